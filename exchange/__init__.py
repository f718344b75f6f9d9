"""The exchange's HTTP API, access policy, web pages and command line."""
