-- A check value sealed under the installation's master key, so a server
-- started with another key refuses to start instead of writing person keys
-- that no other process can unwrap.
CREATE TABLE installation (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    master_key_check  bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
