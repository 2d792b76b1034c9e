-- Access and privacy: sign-in by password or OpenID Connect, browser
-- sessions, API tokens an administrator can name and revoke, the record of
-- sign-in attempts and refusals, and the append-only audit of every read
-- of a person's data.

ALTER TABLE accounts
    ADD COLUMN login            text,
    ADD COLUMN password_hash    text,
    ADD COLUMN professional_id  uuid,
    ADD COLUMN failed_logins    integer NOT NULL DEFAULT 0,
    ADD COLUMN locked_until     timestamptz,
    ADD COLUMN disabled_at      timestamptz,
    ADD COLUMN oidc_issuer      text,
    ADD COLUMN oidc_subject     text,
    ADD CONSTRAINT accounts_role CHECK (role IN ('desk_operator', 'desk_supervisor',
        'partner', 'professional', 'coordinator', 'admin')),
    -- A professional's account is bound to their entry of the registry.
    ADD CONSTRAINT accounts_professional CHECK ((role = 'professional') = (professional_id IS NOT NULL)),
    ADD CONSTRAINT accounts_oidc CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL));

-- Logins are unique on the installation, whatever their case.
CREATE UNIQUE INDEX accounts_login_key ON accounts (lower(login));
CREATE UNIQUE INDEX accounts_oidc_key ON accounts (oidc_issuer, oidc_subject);

-- Tokens get an id (to list and revoke them without their secret) and a label.
ALTER TABLE api_tokens
    ADD COLUMN token_id  uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN label     text NOT NULL DEFAULT '',
    -- The administrator who issued it (NULL: issued by the installation's
    -- tooling, e.g. the demo loader).
    ADD COLUMN issued_by uuid;
CREATE UNIQUE INDEX api_tokens_id_key ON api_tokens (token_id);

-- Browser sessions: only the SHA-256 of the cookie's secret is stored.
CREATE TABLE sessions (
    session_hash  bytea PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz
);
CREATE INDEX sessions_account ON sessions (account_id);

-- OpenID Connect sign-ins under way: the state, the PKCE verifier and the
-- nonce of an authorization request, until the provider sends the browser
-- back (or they expire).
CREATE TABLE oidc_requests (
    state_hash     bytea PRIMARY KEY,
    pkce_verifier  text NOT NULL,
    nonce          text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Sign-in attempts and refused credentials: what happened, to which
-- account when one is known. No login name, password, token or address.
CREATE TABLE auth_events (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    account_id  uuid,
    network_id  uuid
);
CREATE INDEX auth_events_account ON auth_events (account_id, id);
CREATE INDEX auth_events_network ON auth_events (network_id, id);

-- Every read of a person's card, history or export: who, when, whose data,
-- what and why. Append-only like the event log.
CREATE TABLE read_audit (
    id               bigserial PRIMARY KEY,
    network_id       uuid NOT NULL,
    at               timestamptz NOT NULL DEFAULT now(),
    account_id       uuid NOT NULL,
    role             text NOT NULL,
    organization_id  uuid NOT NULL,
    person_id        uuid NOT NULL,
    what             text NOT NULL,
    purpose          text NOT NULL
);
CREATE INDEX read_audit_person ON read_audit (network_id, person_id, id);
CREATE INDEX read_audit_account ON read_audit (network_id, account_id, id);
CREATE TRIGGER read_audit_append_only BEFORE UPDATE OR DELETE ON read_audit
    FOR EACH ROW EXECUTE FUNCTION sportello_forbid_rewrite();
CREATE TRIGGER auth_events_append_only BEFORE UPDATE OR DELETE ON auth_events
    FOR EACH ROW EXECUTE FUNCTION sportello_forbid_rewrite();
