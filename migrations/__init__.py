"""The schema migrations, installed with the service as the package `app.migrations`."""
