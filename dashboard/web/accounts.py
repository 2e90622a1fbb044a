"""Placeholder: replaced by the accounts pages."""

from flask import Blueprint

bp = Blueprint("accounts", __name__)
