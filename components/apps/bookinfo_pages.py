"""The HTML of Bookinfo's productpage: the index page and the "Simple Bookstore App" page.

Same content and structure as upstream's Flask-Bootstrap templates of the release the walkthroughs
use (page starts with `<!DOCTYPE html>`; book details as a definition list; each review with its
reviewer and, from reviews v2/v3, full and empty glyphicon stars in the rating's colour; "Reviews
served by:" and the reviews pod's name underlined on its own line), written for this emulator.
"""

from __future__ import annotations

from html import escape
from typing import Any

STYLESHEET = "static/bookinfo.css"
CSS = """body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #333; }
.navbar { background: #222; color: #fff; padding: 10px 20px; }
.navbar a { color: #fff; }
.container-fluid { padding: 0 20px; }
.col-md-6 { display: inline-block; vertical-align: top; width: 48%; }
.text-center { text-align: center; }
.text-primary { color: #337ab7; }
.glyphicon-star::before { content: "\\2605"; }
.glyphicon-star-empty::before { content: "\\2606"; }
table { border-collapse: collapse; }
table th, table td { border: 1px solid lightgrey; padding: .5em; }
"""


def _head() -> str:
    return ('<!DOCTYPE html>\n<html>\n  <head>\n    <title>Simple Bookstore App</title>\n'
            '<meta charset="utf-8">\n<meta http-equiv="X-UA-Compatible" content="IE=edge">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
            f'<link rel="stylesheet" href="{STYLESHEET}">\n  </head>\n  <body>\n')


def _tail() -> str:
    return "  </body>\n</html>\n"


def service_table(node: Any) -> str:
    """json2html's rendering of the service tree: a table of keys and values, lists as items."""
    if isinstance(node, dict):
        rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{service_table(v)}</td></tr>" for k, v in node.items())
        return f'<table class="table table-condensed table-bordered table-hover">{rows}</table>'
    if isinstance(node, list):
        return "<ul>" + "".join(f"<li>{service_table(v)}</li>" for v in node) + "</ul>" if node else ""
    return escape(str(node))


def index_page(services: dict[str, Any]) -> str:
    return (_head() + "<p>\n    <h3>Hello! This is a simple bookstore application consisting of three services as "
            "shown below</h3>\n</p>\n" + service_table(services) + "\n<p>\n    <h4>Click on one of the links below "
            "to auto generate a request to the backend as a real user or a tester\n    </h4>\n</p>\n"
            '<p><a href="/productpage?u=normal">Normal user</a></p>\n'
            '<p><a href="/productpage?u=test">Test user</a></p>\n' + _tail())


def _navbar(user: str) -> str:
    if user:
        account = (f'<p class="navbar-text navbar-right">\n      <i class="glyphicon glyphicon-user"></i>\n'
                   f'      <span>{escape(user)} ( <a href="logout">sign out</a> )</span>\n    </p>')
    else:
        account = ('<button type="button" class="btn btn-default navbar-btn navbar-right" data-toggle="modal" '
                   'href="#login-modal">Sign in</button>')
    return (f'<nav class="navbar navbar-inverse navbar-static-top">\n  <div class="container">\n'
            f'    <a class="navbar-brand" href="#">BookInfo Sample</a>\n    {account}\n  </div>\n</nav>\n'
            '<div id="login-modal" class="modal fade" role="dialog">\n'
            '  <form method="post" action="login" name="login_form">\n'
            '    <p><input type="text" name="username" id="username" placeholder="User Name"></p>\n'
            '    <p><input type="password" name="passwd" placeholder="Password"></p>\n'
            '    <p><button type="submit">Sign in</button></p>\n  </form>\n</div>\n')


def _details(status: int, details: dict[str, Any]) -> str:
    if status != 200:
        return ('      <h4 class="text-center text-primary">Error fetching product details!</h4>\n'
                f'      <p>{escape(str(details.get("error", "")))}</p>\n')
    rows = "".join(f"        <dt>{label}:</dt>{escape(str(details.get(key, '')))}\n" for label, key in (
        ("Type", "type"), ("Pages", "pages"), ("Publisher", "publisher"), ("Language", "language"),
        ("ISBN-10", "ISBN-10"), ("ISBN-13", "ISBN-13")))
    return f'      <h4 class="text-center text-primary">Book Details</h4>\n      <dl>\n{rows}      </dl>\n'


def _stars(rating: dict[str, Any]) -> str:
    stars = rating.get("stars")
    if isinstance(stars, int) and stars:
        full = '          <span class="glyphicon glyphicon-star"></span>\n' * stars
        empty = '          <span class="glyphicon glyphicon-star-empty"></span>\n' * max(0, 5 - stars)
        return f'        <font color="{escape(str(rating.get("color", "")))}">\n{full}{empty}        </font>\n'
    if rating.get("error"):
        return f"        <p><i>{escape(str(rating['error']))}</i></p>\n"
    return ""


def _reviews(status: int, reviews: dict[str, Any]) -> str:
    if status != 200:
        return ('      <h4 class="text-center text-primary">Error fetching product reviews!</h4>\n'
                f'      <p>{escape(str(reviews.get("error", "")))}</p>\n')
    parts = ['      <h4 class="text-center text-primary">Book Reviews</h4>\n']
    for review in reviews.get("reviews") or []:
        parts.append(f'      <blockquote>\n        <p>{escape(str(review.get("text", "")))}</p>\n'
                     f'        <small>{escape(str(review.get("reviewer", "")))}</small>\n')
        if isinstance(review.get("rating"), dict):
            parts.append(_stars(review["rating"]))
        parts.append("      </blockquote>\n")
    parts.append(f'      <dl>\n        <dt>Reviews served by:</dt>\n        <u>{escape(str(reviews.get("podname")))}</u>\n')
    if reviews.get("clustername") != "null":
        parts.append(f'        on cluster <u>{escape(str(reviews.get("clustername")))}</u>\n')
    parts.append("      </dl>\n")
    return "".join(parts)


def product_page(product: dict[str, Any], details_status: int, details: dict[str, Any],
                 reviews_status: int, reviews: dict[str, Any], user: str) -> str:
    return (_head() + _navbar(user)
            + '<div class="container-fluid">\n  <div class="row">\n    <div class="col-md-12">\n'
            f'      <h3 class="text-center text-primary">{escape(product["title"])}</h3>\n'
            f'      <p>Summary: {product["descriptionHtml"]}</p>\n    </div>\n  </div>\n'
            '  <div class="row">\n    <div class="col-md-6">\n' + _details(details_status, details)
            + '    </div>\n    <div class="col-md-6">\n' + _reviews(reviews_status, reviews)
            + "    </div>\n  </div>\n</div>\n" + _tail())
