-- An empty stand-in while the store has no usage facts table yet.
CREATE TEMPORARY TABLE al_no_facts ({{columns}}) ENGINE = Memory
