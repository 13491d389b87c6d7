"""§13 settings through the real app: defaults, PUT/PATCH, custom fields and their effect on clients."""
from __future__ import annotations

CLIENT_DEFAULTS = {
    "default_currency": "EUR", "default_payment_terms_days": 30, "default_tax_rate": "0.00",
    "tier_multipliers": {"preferred": "0.95", "vip": "0.90"}, "high_value_threshold": "10000.00",
    "new_client_days": 30, "sending_address": None, "inbound_address": None,
}


def fields(response):
    return [d["field"] for d in response.data["error"]["details"]]


def create(api, name="Acme", **body):  # namesakes too: these tests are not about duplicates
    response = api.post("/v1/clients?allow_duplicate=true", {"name": name, **body})
    assert response.status_code == 201, response.data
    return response.data


def define(api, key, type_="text", **extra):
    response = api.post("/v1/settings/custom-fields", {"key": key, "label": key.title(), "type": type_, **extra})
    assert response.status_code == 201, response.data
    return response.data


# --- settings resources ------------------------------------------------------------------------------

def test_a_new_tenant_gets_the_contract_defaults(api):
    response = api.get("/v1/settings/client")
    assert response.status_code == 200
    assert response.data == CLIENT_DEFAULTS
    assert api.get("/v1/settings/portal").data["enabled"] is False
    assert api.get("/v1/settings/lead-score-thresholds").data == {"hot": 80, "warm": 50}
    assert api.get("/v1/settings/custom-fields").data["items"] == []


def test_put_replaces_the_whole_object_and_omitted_fields_return_to_defaults(api):
    api.patch("/v1/settings/client", {"default_currency": "USD", "new_client_days": 7,
                                      "tier_multipliers": {"vip": "0.80"}})
    response = api.put("/v1/settings/client", {"default_payment_terms_days": 14})
    assert response.status_code == 200
    assert response.data == {**CLIENT_DEFAULTS, "default_payment_terms_days": 14}
    assert api.get("/v1/settings/client").data == response.data


def test_patch_writes_only_the_named_fields(api):
    api.put("/v1/settings/client", {"default_currency": "GBP", "sending_address": "crm@acme.test"})
    response = api.patch("/v1/settings/client", {"default_payment_terms_days": 45})
    assert response.status_code == 200
    expected = {**CLIENT_DEFAULTS, "default_currency": "GBP", "sending_address": "crm@acme.test",
                "default_payment_terms_days": 45}
    assert response.data == expected
    assert api.get("/v1/settings/client").data == expected


def test_patch_of_one_tier_multiplier_keeps_the_other(api):
    response = api.patch("/v1/settings/client", {"tier_multipliers": {"vip": "0.85"}})
    assert response.status_code == 200
    assert response.data["tier_multipliers"] == {"preferred": "0.95", "vip": "0.85"}


def test_portal_and_threshold_settings_take_put_and_patch(api):
    assert api.patch("/v1/settings/portal", {"enabled": True}).data["enabled"] is True
    assert api.get("/v1/settings/portal").data["show_invoices"] is True
    assert api.put("/v1/settings/portal", {"show_invoices": False}).data["enabled"] is False
    assert api.patch("/v1/settings/lead-score-thresholds", {"warm": 40}).data == {"hot": 80, "warm": 40}
    assert api.put("/v1/settings/lead-score-thresholds", {"hot": 90}).data == {"hot": 90, "warm": 50}


def test_invalid_settings_are_422_naming_the_field_and_change_nothing(api):
    cases = [("PUT", {"default_currency": "euro"}, "default_currency"),
             ("PATCH", {"default_payment_terms_days": -1}, "default_payment_terms_days"),
             ("PATCH", {"new_client_days": 0}, "new_client_days"),
             ("PATCH", {"tier_multipliers": {"vip": "0"}}, "tier_multipliers.vip"),
             ("PATCH", {"colour": "red"}, "colour"),
             ("PUT", {"high_value_threshold": "-5"}, "high_value_threshold")]
    for method, body, field in cases:
        response = api.call(method, "/v1/settings/client", body)
        assert response.status_code == 422, (method, body, response.data)
        assert response.data["error"]["code"] == "validation_error"
        assert field in fields(response), (body, response.data)
    assert api.get("/v1/settings/client").data == CLIENT_DEFAULTS


def test_default_currency_must_be_an_iso_4217_code(api):
    response = api.patch("/v1/settings/client", {"default_currency": "ABC"})
    assert (response.status_code, fields(response)) == (422, ["default_currency"])
    assert create(api)["currency"] == "EUR"


def test_lead_score_thresholds_keep_warm_below_hot(api):
    assert api.patch("/v1/settings/lead-score-thresholds", {"warm": 85}).status_code == 422
    assert api.get("/v1/settings/lead-score-thresholds").data == {"hot": 80, "warm": 50}


def test_settings_money_is_answered_with_two_decimals(api):
    response = api.patch("/v1/settings/client", {"high_value_threshold": "5000", "default_tax_rate": "21",
                                                 "tier_multipliers": {"vip": "0.9"}})
    assert response.status_code == 200
    assert response.data["high_value_threshold"] == "5000.00"
    assert response.data["default_tax_rate"] == "21.00"
    assert response.data["tier_multipliers"]["vip"] == "0.90"


def test_only_admins_change_settings_but_everyone_reads_them(api):
    for role in ("viewer", "agent", "manager"):
        staff = api.as_("t1", roles=(role,))
        assert staff.get("/v1/settings/client").status_code == 200
        for method in ("PUT", "PATCH"):
            response = staff.call(method, "/v1/settings/client", {"default_currency": "USD"})
            assert (response.status_code, response.data["error"]["code"]) == (403, "forbidden")
        assert staff.post("/v1/settings/custom-fields", {"key": "x", "label": "X", "type": "text"}).status_code == 403
    assert api.get("/v1/settings/client").data == CLIENT_DEFAULTS


def test_settings_belong_to_one_tenant(api):
    api.patch("/v1/settings/client", {"default_currency": "USD"})
    define(api, "seats", "number")
    other = api.as_("t2")
    assert other.get("/v1/settings/client").data == CLIENT_DEFAULTS
    assert other.get("/v1/settings/custom-fields").data["items"] == []


# --- settings defaults applied to new clients --------------------------------------------------------

def test_new_clients_take_currency_terms_and_tax_rate_from_settings(api):
    api.put("/v1/settings/client", {"default_currency": "USD", "default_payment_terms_days": 14,
                                    "default_tax_rate": "21.00"})
    client = create(api)
    assert (client["currency"], client["payment_terms_days"], client["tax_rate_override"]) == ("USD", 14, "21.00")
    given = create(api, currency="GBP", payment_terms_days=60, tax_rate_override="6.00")
    assert (given["currency"], given["payment_terms_days"], given["tax_rate_override"]) == ("GBP", 60, "6.00")


def test_new_clients_take_tier_multipliers_from_settings(api):
    api.patch("/v1/settings/client", {"tier_multipliers": {"preferred": "0.80", "vip": "0.70"}})
    assert create(api, pricing_tier="preferred")["price_multiplier"] == "0.80"
    assert create(api, pricing_tier="vip")["price_multiplier"] == "0.70"
    assert create(api)["price_multiplier"] == "1.00"


def test_changing_settings_leaves_existing_clients_alone(api):
    client = create(api, pricing_tier="vip")
    api.put("/v1/settings/client", {"default_currency": "USD", "tier_multipliers": {"vip": "0.50"}})
    stored = api.get(f"/v1/clients/{client['id']}").data
    assert (stored["currency"], stored["price_multiplier"]) == ("EUR", "0.90")


def test_high_value_chip_follows_the_current_threshold(api):
    create(api, "Acme")
    assert api.patch("/v1/settings/client", {"high_value_threshold": "0.00"}).status_code == 200
    assert api.get("/v1/clients/chips").data["high_value"] == 1
    assert [c["name"] for c in api.get("/v1/clients?chip=high_value").data["items"]] == ["Acme"]


def test_new_chip_follows_new_client_days(api):
    create(api)
    api.patch("/v1/settings/client", {"new_client_days": 1})
    assert api.get("/v1/clients/chips").data["new"] == 1


# --- custom fields -----------------------------------------------------------------------------------

def test_custom_fields_are_defined_listed_and_deleted(api):
    assert define(api, "seats", "number") == {"key": "seats", "label": "Seats", "type": "number",
                                              "options": [], "required": False}
    define(api, "size", "select", options=["s", "m"], required=True)
    items = api.get("/v1/settings/custom-fields").data["items"]
    assert sorted(d["key"] for d in items) == ["seats", "size"]
    assert api.call("DELETE", "/v1/settings/custom-fields/seats").status_code == 204
    assert [d["key"] for d in api.get("/v1/settings/custom-fields").data["items"]] == ["size"]
    response = api.call("DELETE", "/v1/settings/custom-fields/seats")
    assert (response.status_code, response.data["error"]["code"]) == (404, "not_found")


def test_a_custom_field_key_is_defined_once(api):
    define(api, "seats", "number")
    response = api.post("/v1/settings/custom-fields", {"key": "seats", "label": "Again", "type": "text"})
    assert response.status_code == 409
    assert api.get("/v1/settings/custom-fields").data["items"][0]["label"] == "Seats"


def test_invalid_custom_field_definitions_are_422(api):
    for body, field in [({"key": "Bad Key", "label": "x", "type": "text"}, "key"),
                        ({"key": "x", "label": "x", "type": "colour"}, "type"),
                        ({"key": "x", "label": "", "type": "text"}, "label"),
                        ({"key": "x", "label": "x", "type": "select"}, "body")]:
        response = api.post("/v1/settings/custom-fields", body)
        assert response.status_code == 422, body
        assert field in fields(response), (body, response.data)
    assert api.get("/v1/settings/custom-fields").data["items"] == []


def test_client_custom_fields_must_be_defined(api):
    define(api, "seats", "number")
    response = api.post("/v1/clients", {"name": "Acme", "custom_fields": {"shoe_size": 42}})
    assert (response.status_code, fields(response)) == (422, ["custom_fields.shoe_size"])
    client = create(api, custom_fields={"seats": 12})
    assert client["custom_fields"] == {"seats": 12}
    response = api.patch(f"/v1/clients/{client['id']}", {"custom_fields": {"shoe_size": 42}})
    assert (response.status_code, fields(response)) == (422, ["custom_fields.shoe_size"])
    assert api.get(f"/v1/clients/{client['id']}").data["custom_fields"] == {"seats": 12}


def test_client_custom_fields_of_the_wrong_type_are_422(api):
    define(api, "seats", "number")
    define(api, "since", "date")
    define(api, "lounge", "boolean")
    define(api, "size", "select", options=["s", "m"])
    for key, value in [("seats", "many"), ("since", "yesterday"), ("lounge", "yes"), ("size", "xl")]:
        response = api.post("/v1/clients", {"name": "Acme", "custom_fields": {key: value}})
        assert (response.status_code, fields(response)) == (422, [f"custom_fields.{key}"]), (key, value)
    client = create(api, custom_fields={"seats": 3, "since": "2024-02-29", "lounge": True, "size": "m"})
    response = api.patch(f"/v1/clients/{client['id']}", {"custom_fields": {"since": "2024-02-30"}})
    assert (response.status_code, fields(response)) == (422, ["custom_fields.since"])


def test_patching_custom_fields_merges_and_null_removes_a_value(api):
    define(api, "seats", "number")
    define(api, "note", "text")
    client = create(api, custom_fields={"seats": 3, "note": "vip"})
    response = api.patch(f"/v1/clients/{client['id']}", {"custom_fields": {"seats": 4, "note": None}})
    assert response.status_code == 200
    assert response.data["custom_fields"] == {"seats": 4}


def test_a_required_custom_field_is_needed_on_create(api):
    define(api, "region", "text", required=True)
    response = api.post("/v1/clients", {"name": "Acme"})
    assert (response.status_code, fields(response)) == (422, ["custom_fields.region"])
    assert create(api, custom_fields={"region": "north"})["custom_fields"] == {"region": "north"}


def test_a_required_custom_field_cannot_be_cleared(api):
    define(api, "region", "text", required=True)
    client = create(api, custom_fields={"region": "north"})
    response = api.patch(f"/v1/clients/{client['id']}", {"custom_fields": {"region": None}})
    assert (response.status_code, fields(response)) == (422, ["custom_fields.region"])


def test_editing_custom_fields_still_works_after_another_definition_is_deleted(api):
    define(api, "seats", "number")
    define(api, "legacy", "text")
    client = create(api, custom_fields={"seats": 3, "legacy": "x"})
    api.call("DELETE", "/v1/settings/custom-fields/legacy")
    response = api.patch(f"/v1/clients/{client['id']}", {"custom_fields": {"seats": 4}})
    assert response.status_code == 200, response.data
    assert response.data["custom_fields"]["seats"] == 4
