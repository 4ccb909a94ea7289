-- Rejected messages keep a bounded prefix of what came (collector/store.py): a row stays
-- under 2 KB whatever the topic or payload. NOT VALID: rows kept before are not checked.
ALTER TABLE rejected_messages ADD CONSTRAINT rejected_messages_bounded CHECK (
    octet_length(topic) <= 256
    AND octet_length(kind) <= 32
    AND octet_length(reason) <= 512
    AND octet_length(payload_head) <= 256
) NOT VALID;
