"""httpbin's landing page.

The head is laid out as the real page's (users check the service with
`curl -s httpbin:8000 | grep title`, which prints `    <title>httpbin.org</title>`); the body
lists the endpoints this server answers instead of loading the Swagger UI.
"""

from __future__ import annotations

ENDPOINTS = (
    ("/ip", "Returns the requester's IP Address."),
    ("/headers", "Return the incoming request's HTTP headers."),
    ("/user-agent", "Return the incoming requests's User-Agent Header."),
    ("/get", "The request's query parameters."),
    ("/post", "The request's POST parameters."),
    ("/put", "The request's PUT parameters."),
    ("/patch", "The request's PATCH parameters."),
    ("/delete", "The request's DELETE parameters."),
    ("/anything", "Returns anything passed in request data."),
    ("/anything/{anything}", "Returns anything passed in request data."),
    ("/status/{codes}", "Return status code or random status code if more than one are given."),
    ("/delay/{delay}", "Returns a delayed response (max of 10 seconds)."),
    ("/bytes/{n}", "Returns n random bytes generated with given seed."),
    ("/stream/{n}", "Stream n JSON responses."),
    ("/uuid", "Return a UUID4."),
    ("/hostname", "Returns the name of the host serving the request."),
    ("/response-headers", "Returns a set of response headers from the query string."),
    ("/redirect/{n}", "302 Redirects n times."),
)

_HEAD = """<!DOCTYPE html>
<html lang="en">

<head>
    <meta charset="UTF-8">
    <title>httpbin.org</title>
    <link href="https://fonts.googleapis.com/css?family=Open+Sans:400,700|Source+Code+Pro:300,600|Titillium+Web:400,600,700"
        rel="stylesheet">
    <style>
        html {
            box-sizing: border-box;
            overflow-y: scroll;
        }

        body {
            margin: 0;
            background: #fafafa;
            font-family: "Open Sans", sans-serif;
        }

        .wrapper {
            max-width: 1460px;
            margin: 0 auto;
            padding: 0 20px;
        }

        code {
            font-family: "Source Code Pro", monospace;
        }
    </style>
</head>
"""

_BODY_TOP = """
<body>
    <div class="wrapper">
        <hgroup class="main">
            <h2 class="title">httpbin.org</h2>
            <pre class="base-url">[ Base URL: httpbin.org/ ]</pre>
        </hgroup>
        <div class="description">
            <p>A simple HTTP Request &amp; Response Service.
                <br>
                <br>
                <b>Run locally: </b>
                <code>$ docker run -p 80:80 kennethreitz/httpbin</code>
            </p>
        </div>
        <ul class="endpoints">
"""

_BODY_BOTTOM = """        </ul>
    </div>
</body>

</html>
"""


def render() -> str:
    items = "".join(f'            <li><code>{path}</code> {text}</li>\n' for path, text in ENDPOINTS)
    return _HEAD + _BODY_TOP + items + _BODY_BOTTOM


PAGE = render()
