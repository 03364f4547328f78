-- Fencing tokens of company leases (cluster mode). A node that takes a company's lease in
-- Redis bumps the company's epoch here and its actor writes with it; a write carrying an
-- older epoch (a paused or partitioned previous owner) is refused, so it can never overwrite
-- the new owner's state. Epochs only grow.
CREATE TABLE lease_epochs (
  company_id INTEGER PRIMARY KEY REFERENCES companies(id) ON DELETE CASCADE,
  epoch BIGINT NOT NULL CHECK (epoch > 0)
);
