"""Core: the one settings object, the table declarations (names, locations, schemas), credentials and the
shared code's identity. Imports no other Setlist package; no Spark session, no Airflow."""
