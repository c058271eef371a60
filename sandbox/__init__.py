"""Sandbox emulators of the vendor APIs (FastAPI, real HTTP on loopback).

They stand for the vendors: nothing here imports the product (plugins/), so the emulators cannot
share the product's assumptions.
"""
