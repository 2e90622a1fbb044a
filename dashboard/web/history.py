"""Placeholder: replaced by the history pages."""

from flask import Blueprint

bp = Blueprint("history", __name__)
