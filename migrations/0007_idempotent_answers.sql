-- The first answer of an idempotent request, kept with its record in the
-- transaction of its events, so that every retry is answered the same
-- status, headers and body bytes rather than an answer rendered again
-- (crates/store/src/idempotency.rs). An answer holding a person's data is
-- sealed under that person's key (answer_person, answer_sealed), so erasing
-- the person erases it too; any other is kept as it is (answer). Records
-- kept before this migration have neither: their retries are answered from
-- the record's versions and position, as before.
ALTER TABLE idempotency
    ADD COLUMN answer        jsonb,
    ADD COLUMN answer_person uuid,
    ADD COLUMN answer_sealed bytea,
    ADD CONSTRAINT idempotency_one_answer
        CHECK (answer IS NULL OR answer_sealed IS NULL),
    ADD CONSTRAINT idempotency_sealed_for_a_person
        CHECK ((answer_person IS NULL) = (answer_sealed IS NULL));
