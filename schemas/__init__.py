"""The published contract: XML Schemas of govhub (installed as package data)."""
