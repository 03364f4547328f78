"""In-process fakes of the services we talk to (YClients), for tests and local runs."""
