-- The integration ledger gets its own database and user, apart from Airflow's metadata.
CREATE USER ledger WITH PASSWORD 'ledger';
CREATE DATABASE ledger OWNER ledger;
