-- Placeholder on branch h-review only: 0008 belongs to the web workspace (branch h-web), whose
-- file replaces this one at the merge. Migrations must be numbered 1..n.
SELECT 1;
