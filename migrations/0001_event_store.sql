-- The event store: the truth of Sportello.
--
-- Every action is a row of `events`, appended and never updated or deleted.
-- Global order is the pair (tx_id, position): readers only read below the
-- oldest transaction still running (pg_snapshot_xmin), so an event whose
-- transaction commits late is never skipped (see docs/ARCHITECTURE.md).
-- A stream is its events: the unique (stream_id, version) serialises
-- concurrent writers of one stream, and its last event says its network,
-- kind, version and the transaction that wrote it.


CREATE TABLE events (
    position        bigserial PRIMARY KEY,
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid NOT NULL UNIQUE,
    network_id      uuid NOT NULL,
    stream_id       uuid NOT NULL,
    stream_kind     text NOT NULL,
    version         bigint NOT NULL CHECK (version >= 1),
    event_type      text NOT NULL,
    schema_version  integer NOT NULL CHECK (schema_version >= 1),
    payload         jsonb NOT NULL,
    -- Personal part: AEAD ciphertext under the key of `person_id` (nonce || ciphertext).
    person_id       uuid,
    personal        bytea,
    -- The organisation the event concerns (routes it on the bus), if any.
    organization_id uuid,
    metadata        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version),
    CHECK ((person_id IS NULL) = (personal IS NULL))
);

CREATE INDEX events_log_order ON events (tx_id, position);
CREATE INDEX events_network_log_order ON events (network_id, tx_id, position);

-- Append-only: the log is never rewritten.
CREATE FUNCTION sportello_forbid_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only' USING ERRCODE = 'SPRO1';
END $$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION sportello_forbid_rewrite();

-- Idempotency records, written in the same transaction as the events.
CREATE TABLE idempotency (
    network_id    uuid NOT NULL,
    key           uuid NOT NULL,
    request_hash  bytea NOT NULL,
    stream_id     uuid NOT NULL,
    first_version bigint,
    last_version  bigint,
    last_position bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (network_id, key)
);

-- Per-person data keys, wrapped by the installation's master key.
-- Deleting a row crypto-shreds that person's personal data everywhere.
CREATE TABLE person_keys (
    person_id    uuid PRIMARY KEY,
    network_id   uuid NOT NULL,
    -- NULL once shredded: the row stays as a tombstone so that no new key
    -- (and no new personal data) is ever made for an erased person.
    wrapped_key  bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    shredded_at  timestamptz,
    CHECK ((wrapped_key IS NULL) = (shredded_at IS NOT NULL))
);

-- The version a new event of a stream follows, after checking the writer's
-- expectation (p_expected: -1 = any version, 0 = the stream must not exist,
-- n = the stream must be at version n). Errors:
--   SPC01 version conflict,
--   SPC02 this transaction is older than the stream's last append (retry
--         in a new transaction: keeps every stream's order in log order),
--   SPT01 the stream belongs to another network or kind.
-- A new stream needs no look-up: whether version 1 exists is for the
-- unique index to say (unique violation 23505 on
-- events_stream_id_version_key, like any concurrent append that won).
CREATE FUNCTION sportello_stream_head(p_network uuid, p_stream uuid, p_kind text,
                                      p_expected bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    head record;
BEGIN
    IF p_expected = 0 THEN
        RETURN 0;
    END IF;
    SELECT network_id, stream_kind, version, tx_id INTO head
      FROM events WHERE stream_id = p_stream ORDER BY version DESC LIMIT 1;
    IF NOT FOUND THEN
        IF p_expected > 0 THEN
            RAISE EXCEPTION 'stream does not exist' USING ERRCODE = 'SPC01';
        END IF;
        RETURN 0;
    ELSIF head.network_id <> p_network OR head.stream_kind <> p_kind THEN
        RAISE EXCEPTION 'stream belongs to another network or kind' USING ERRCODE = 'SPT01';
    ELSIF p_expected > 0 AND head.version <> p_expected THEN
        RAISE EXCEPTION 'stream is at version %', head.version USING ERRCODE = 'SPC01';
    ELSIF head.tx_id > pg_current_xact_id() THEN
        RAISE EXCEPTION 'transaction older than the stream''s last append'
            USING ERRCODE = 'SPC02';
    END IF;
    RETURN head.version;
END $$;

-- One event, no idempotency key: the common command, kept to one INSERT
-- with scalar parameters (see docs/PERFORMANCE.md).
CREATE FUNCTION sportello_append_one(
    p_network uuid,
    p_stream uuid,
    p_kind text,
    p_expected bigint,
    p_event_id uuid,
    p_type text,
    p_schema_version integer,
    p_payload jsonb,
    p_person_id uuid,
    p_personal bytea,
    p_organization uuid,
    p_metadata jsonb,
    OUT r_version bigint,
    OUT r_position bigint
) LANGUAGE plpgsql AS $$
BEGIN
    r_version := sportello_stream_head(p_network, p_stream, p_kind, p_expected) + 1;
    INSERT INTO events (event_id, network_id, stream_id, stream_kind, version, event_type,
                        schema_version, payload, person_id, personal, organization_id, metadata)
    VALUES (p_event_id, p_network, p_stream, p_kind, r_version, p_type, p_schema_version,
            p_payload, p_person_id, p_personal, p_organization, p_metadata)
    RETURNING position INTO r_position;
END $$;

-- Append events to one stream, atomically, in one round trip, with an
-- optional idempotency key. p_expected and errors as sportello_stream_head,
-- plus SPI01 (idempotency key reused with a different request) and SPE01
-- (nothing to append).
-- Returns one row: the stream, its first and last new version and the
-- position of the last event; when the idempotency key was already used
-- with the same request, returns the first answer with replayed = true and
-- appends nothing.
CREATE FUNCTION sportello_append(
    p_network uuid,
    p_stream uuid,
    p_kind text,
    p_expected bigint,
    p_event_ids uuid[],
    p_types text[],
    p_schema_versions integer[],
    p_payloads jsonb[],
    p_person_ids uuid[],
    p_personal bytea[],
    p_organizations uuid[],
    p_metadata jsonb[],
    p_idem_key uuid,
    p_idem_hash bytea
) RETURNS TABLE (r_stream_id uuid, r_first_version bigint, r_last_version bigint,
                r_last_position bigint, r_replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := cardinality(p_event_ids);
    v0 bigint;
    last_pos bigint;
    idem record;
BEGIN
    IF n IS NULL OR n = 0 THEN
        RAISE EXCEPTION 'nothing to append' USING ERRCODE = 'SPE01';
    END IF;

    IF p_idem_key IS NOT NULL THEN
        INSERT INTO idempotency (network_id, key, request_hash, stream_id)
        VALUES (p_network, p_idem_key, p_idem_hash, p_stream)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT * INTO idem FROM idempotency
             WHERE network_id = p_network AND key = p_idem_key;
            -- The stream id is not compared: a retry of a command that
            -- creates a stream mints a new id, and must get the first one.
            IF idem.request_hash <> p_idem_hash THEN
                RAISE EXCEPTION 'idempotency key reused with a different request'
                    USING ERRCODE = 'SPI01';
            END IF;
            RETURN QUERY SELECT idem.stream_id, idem.first_version, idem.last_version,
                                idem.last_position, true;
            RETURN;
        END IF;
    END IF;

    v0 := sportello_stream_head(p_network, p_stream, p_kind, p_expected);

    WITH ins AS (
        INSERT INTO events (event_id, network_id, stream_id, stream_kind, version,
                            event_type, schema_version, payload, person_id, personal,
                            organization_id, metadata)
        SELECT e.id, p_network, p_stream, p_kind, v0 + e.ord, e.ty, e.sv, e.pl, e.pid,
               e.pd, e.org, e.md
          FROM unnest(p_event_ids, p_types, p_schema_versions, p_payloads, p_person_ids,
                      p_personal, p_organizations, p_metadata)
               WITH ORDINALITY AS e(id, ty, sv, pl, pid, pd, org, md, ord)
         ORDER BY e.ord
        RETURNING position
    )
    SELECT max(position) INTO last_pos FROM ins;

    IF p_idem_key IS NOT NULL THEN
        UPDATE idempotency
           SET first_version = v0 + 1, last_version = v0 + n, last_position = last_pos
         WHERE network_id = p_network AND key = p_idem_key;
    END IF;

    RETURN QUERY SELECT p_stream, v0 + 1, v0 + n, last_pos, false;
END $$;
