"""pacs-cloud mesh exporter core."""
