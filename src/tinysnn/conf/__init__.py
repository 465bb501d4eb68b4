"""Hydra configuration groups, shipped inside the package so that an installed tinysnn runs every command."""
