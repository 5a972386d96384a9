"""The step transaction: the one seam between the services and the storage tricks of the hot path."""
