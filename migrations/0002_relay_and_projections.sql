-- Progress of the relay and of each projection.

-- Where the relay has got to. Informational (for /readyz and metrics): the
-- relay's truth is the JetStream stream's last sequence.
CREATE TABLE relay_progress (
    stream_name   text PRIMARY KEY,
    tx_id         xid8 NOT NULL,
    position      bigint NOT NULL,
    stream_seq    bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per projection: the table generation it writes (blue/green),
-- its checkpoint in log order, and whether it stopped on an event.
CREATE TABLE projection_checkpoints (
    name          text PRIMARY KEY,
    generation    integer NOT NULL DEFAULT 1,
    tx_id         xid8 NOT NULL DEFAULT '0',
    position      bigint NOT NULL DEFAULT 0,
    applied       bigint NOT NULL DEFAULT 0,
    failed_event  uuid,
    error         text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
