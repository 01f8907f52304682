"""The shop's backend: the FastAPI app (api/, middleware/), its services by domain (services/),
the database (db/) and the event log (eventlog/); it may import models and features."""
