-- The event store: the truth of Sportello.
--
-- Every action is a row of `events`, appended and never updated or deleted.
-- Global order is the pair (tx_id, position): readers only read below the
-- oldest transaction still running (pg_snapshot_xmin), so an event whose
-- transaction commits late is never skipped (see docs/ARCHITECTURE.md).

CREATE TABLE streams (
    stream_id   uuid PRIMARY KEY,
    network_id  uuid NOT NULL,
    kind        text NOT NULL,
    version     bigint NOT NULL CHECK (version >= 0),
    -- Transaction of the last append: a later append must come from a later
    -- transaction, so that log order (tx_id, position) keeps stream order.
    last_tx_id  xid8 NOT NULL
);

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

-- Append events to one stream, atomically, in one round trip.
--
-- p_expected: -1 = any version, 0 = the stream must not exist, n = the
-- stream must be at version n. Errors:
--   SPC01 version conflict, SPT01 stream belongs to another network or kind,
--   SPI01 idempotency key reused with a different request.
-- Returns one row: the stream, its first and last new version and the
-- position of the last event; when the idempotency key was already
-- used with the same request, returns the first answer with replayed = true
-- and appends nothing.
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
    n bigint := cardinality(p_event_ids);
    v0 bigint;
    me xid8 := pg_current_xact_id();
    last_pos bigint;
    idem record;
    s record;
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

    IF p_expected = 0 THEN
        INSERT INTO streams (stream_id, network_id, kind, version, last_tx_id)
        VALUES (p_stream, p_network, p_kind, n, me)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'stream already exists' USING ERRCODE = 'SPC01';
        END IF;
        v0 := 0;
    ELSE
        UPDATE streams SET version = version + n, last_tx_id = me
         WHERE stream_id = p_stream AND network_id = p_network AND kind = p_kind
           AND (p_expected < 0 OR version = p_expected)
           AND last_tx_id < me
        RETURNING version - n INTO v0;
        IF NOT FOUND THEN
            SELECT * INTO s FROM streams WHERE stream_id = p_stream;
            IF NOT FOUND AND p_expected < 0 THEN
                INSERT INTO streams (stream_id, network_id, kind, version, last_tx_id)
                VALUES (p_stream, p_network, p_kind, n, me)
                ON CONFLICT DO NOTHING;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'stream created concurrently' USING ERRCODE = 'SPC01';
                END IF;
                v0 := 0;
            ELSIF NOT FOUND THEN
                RAISE EXCEPTION 'stream does not exist' USING ERRCODE = 'SPC01';
            ELSIF s.network_id <> p_network OR s.kind <> p_kind THEN
                RAISE EXCEPTION 'stream belongs to another network or kind' USING ERRCODE = 'SPT01';
            ELSIF (p_expected < 0 OR s.version = p_expected) AND s.last_tx_id >= me THEN
                -- This transaction is older than the stream's last writer:
                -- appending would break stream order in the log. Retryable.
                RAISE EXCEPTION 'transaction older than the stream''s last append'
                    USING ERRCODE = 'SPC02';
            ELSE
                RAISE EXCEPTION 'stream is at version %', s.version USING ERRCODE = 'SPC01';
            END IF;
        END IF;
    END IF;

    WITH ins AS (
        INSERT INTO events (event_id, network_id, stream_id, stream_kind, version, event_type,
                            schema_version, payload, person_id, personal, organization_id,
                            metadata)
        SELECT e.id, p_network, p_stream, p_kind, v0 + e.ord, e.ty, e.sv, e.pl, e.pid, e.pd,
               e.org, e.md
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
