"""The manager's report: figures from the ledger alone, charts (matplotlib, loaded only here), HTML and PDF."""
