//! m365-sim: a local Microsoft 365 tenant.
