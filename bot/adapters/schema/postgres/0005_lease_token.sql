-- Every write to a leased job names the lease it holds: a worker whose lease ran out and
-- was taken over finds its writes refused instead of overwriting the new holder's.
ALTER TABLE jobs ADD COLUMN lease_token TEXT;
