-- Pruning (Store.prune) walks finished jobs by when they were last written and
-- deliveries by when they came, a batch at a time, instead of scanning either table.
CREATE INDEX jobs_finished ON jobs (state, updated_at);
CREATE INDEX deliveries_received ON deliveries (received_at);
