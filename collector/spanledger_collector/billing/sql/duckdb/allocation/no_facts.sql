-- An empty stand-in while the store has no usage facts table yet.
CREATE OR REPLACE TEMP TABLE al_no_facts ({{columns}})
