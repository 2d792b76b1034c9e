-- Accounts and API tokens: every request is made as an account of one
-- organisation of one network. Tokens are stored as SHA-256 hashes only.

CREATE TABLE accounts (
    account_id       uuid PRIMARY KEY,
    network_id       uuid NOT NULL,
    organization_id  uuid NOT NULL,
    role             text NOT NULL,
    label            text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    token_hash   bytea PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
