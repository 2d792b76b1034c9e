-- The blind index of people: a keyed hash (HMAC-SHA256 under a key
-- derived from the master key, first 16 bytes) of each normalised search
-- term of a person's identity — name words, birth year, document numbers.
-- It finds likely duplicates and answers the desk's search without names
-- in clear; a person's rows are deleted when their key is shredded.

CREATE TABLE person_index (
    network_id  uuid NOT NULL,
    term        bytea NOT NULL,
    kind        text NOT NULL,
    person_id   uuid NOT NULL,
    PRIMARY KEY (network_id, term, person_id)
);

CREATE INDEX person_index_person ON person_index (person_id);
