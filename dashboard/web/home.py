"""Placeholder: replaced by the home pages."""

from flask import Blueprint

bp = Blueprint("home", __name__)
