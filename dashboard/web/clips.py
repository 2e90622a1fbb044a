"""Placeholder: replaced by the clips pages."""

from flask import Blueprint

bp = Blueprint("clips", __name__)
