"""The OpenAPI description of the API, served at GET /openapi.json."""


_EXAMPLE_SESSION = {"userId": "ABC123XYZ", "sessionId": "XYZ456ABC", "actions": [
    {"time": "2018-10-18T21:37:28-06:00", "type": "CLICK", "properties": {"locationX": 52, "locationY": 11}},
    {"time": "2018-10-18T21:37:30-06:00", "type": "VIEW", "properties": {"viewedId": "FDJKLHSLD"}},
    {"time": "2018-10-18T21:37:30-06:00", "type": "NAVIGATE",
     "properties": {"pageFrom": "communities", "pageTo": "inventory"}}]}


def openapi_document(token=False):
    """OpenAPI 3.0 for the API; with ``token``, every operation but /health needs it."""
    from .. import __version__

    def ref(name):
        return {"$ref": f"#/components/schemas/{name}"}

    def json_response(description, schema):
        return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}

    def query(name, description, schema=None, repeat=False):
        schema = schema or {"type": "string"}
        if repeat:
            schema = {"type": "array", "items": schema}
        # allowEmptyValue: an empty value is as if the parameter were not given
        return {"name": name, "in": "query", "required": False, "description": description,
                "allowEmptyValue": True, "schema": schema,
                **({"style": "form", "explode": True} if repeat else {})}

    errors = {
        "400": json_response("Invalid JSON, an invalid session, or a malformed or unknown "
                             "parameter", "Error"),
        **({"401": json_response("No valid bearer token", "Error")} if token else {}),
        "503": json_response("The database could not serve the request; retry", "Error"),
    }
    string = {"type": "string", "minLength": 1}
    document = {
        "openapi": "3.0.3",
        "info": {"title": "ohlog", "version": __version__,
                 "description": "User-activity session logs: send them, read them back."},
        "paths": {
            "/api/log": {"post": {
                "summary": "Store one session or an array of sessions",
                "description": "All or nothing: a 400 stores nothing. Sending the same "
                               "actions again stores nothing more (they count as duplicates).",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"oneOf": [ref("Session"), {"type": "array", "items": ref("Session")}]},
                    "example": _EXAMPLE_SESSION}}},
                "responses": {
                    "200": json_response("Stored", "Summary"), **errors,
                    "413": json_response("The body is larger than the server's limit", "Error"),
                    "415": json_response("The body is not sent as application/json, or is encoded other"
                                         " than plain or gzip (Content-Encoding)", "Error"),
                },
            }},
            "/api/log/get": {"get": {
                "summary": "Actions matching every filter given, oldest first",
                "description": "A time without a UTC offset is compared with each action's "
                               "wall-clock time as written; with an offset (or Z), with its instant. "
                               "A start is the first moment of the unit it names, an end the last "
                               "(end=2018-10-31 includes all of that day).",
                "parameters": [
                    {**query("userId", "Only these users' actions", repeat=True), "example": ["ABC123XYZ"]},
                    {**query("type", "Only these types, in any case", repeat=True), "example": ["CLICK"]},
                    query("sessionId", "Only these sessions' actions", repeat=True),
                    query("session", "The same as sessionId (the original API's name)", repeat=True),
                    query("date", "Only within the year, month, day, hour, minute or second "
                                  "this names, such as 2018-10-18 (not with start or end)"),
                    {**query("start", "From this time on"), "example": "2018-10-18T21:37:25"},
                    {**query("end", "Up to this time, inclusive of the unit it names"),
                     "example": "2018-10-18T21:37:29"},
                    query("limit", "At most this many actions",
                          {"type": "integer", "minimum": 0, "maximum": (1 << 63) - 1}),
                    query("order", "By instant", {"type": "string", "enum": ["asc", "desc"]}),
                    query("after", "Only the actions after this place in the order: the cursor "
                                   "of a next link (opaque; follow the link as given)",
                          {"type": "string", "pattern": "^[A-Za-z0-9_-]{24}$"}),
                ],
                "responses": {"200": {**json_response(
                                  "The actions; if the server caps an answer (ohlog serve "
                                  "--max-rows) and more match, also a next link", "Actions"),
                                  "headers": {"Link": {
                                      "description": '<next>; rel="next" when the answer has next',
                                      "schema": {"type": "string"}}}},
                              "404": json_response("No action matches", "Actions"), **errors},
            }},
            "/health": {"get": {
                "summary": "Whether the server can read its database",
                "security": [],
                "responses": {"200": json_response("Healthy", "Health"),
                              "503": json_response("The database cannot be read", "Error")},
            }},
            "/openapi.json": {"get": {
                "summary": "This description",
                "responses": {"200": {"description": "OpenAPI 3.0",
                                      "content": {"application/json": {"schema": {"type": "object"}}}},
                              **({"401": errors["401"]} if token else {})},
            }},
        },
        "components": {"schemas": {
            "Session": {"type": "object", "required": ["userId", "sessionId", "actions"], "properties": {
                "userId": string, "sessionId": string,
                "actions": {"type": "array", "minItems": 1, "items": ref("Action")}}},
            "Action": {"type": "object", "required": ["time", "type", "properties"], "properties": {
                "time": {"type": "string", "description": "ISO 8601, such as 2018-10-18T21:37:28-06:00"},
                "type": string,
                "properties": {"type": "object", "description":
                               "CLICK needs numbers locationX and locationY, VIEW a string viewedId, "
                               "NAVIGATE strings pageFrom and pageTo"}}},
            "StoredAction": {"type": "object",
                             "required": ["userId", "sessionId", "time", "type", "properties"],
                             "properties": {"userId": {"type": "string"}, "sessionId": {"type": "string"},
                                            "time": {"type": "string"}, "type": {"type": "string"},
                                            "properties": {"type": "object"}}},
            "Actions": {"type": "object", "required": ["actions"], "properties": {
                "actions": {"type": "array", "items": ref("StoredAction")},
                "next": {"type": "string", "description":
                         "Only when more actions match than the server answers at once: "
                         "GET this (a path and query, the same filters and a cursor, after) "
                         "for the next page; the last page has none"}}},
            "Summary": {"type": "object", "required": ["inserted", "duplicates"], "properties": {
                "inserted": {"type": "integer", "description": "Actions stored"},
                "duplicates": {"type": "integer",
                               "description": "Actions already stored, not stored again"}}},
            "Error": {"type": "object", "required": ["error", "details"], "properties": {
                "error": {"type": "string"},
                "details": {"type": "array", "items": {
                    "type": "object", "required": ["path", "message"], "properties": {
                        "path": {"type": "string",
                                 "description": "Such as actions[2].time; [1].userId in an array"},
                        "message": {"type": "string"}}}}}},
            "Health": {"type": "object", "required": ["status"],
                       "properties": {"status": {"type": "string"}}},
        }},
    }
    if token:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
