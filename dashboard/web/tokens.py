"""Placeholder: replaced by the tokens pages."""

from flask import Blueprint

bp = Blueprint("tokens", __name__)
