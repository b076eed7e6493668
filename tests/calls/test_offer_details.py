"""Offers carry the customer's name and fields: they must reach the preview card."""

import json

from calls.services import offer_details


def test_huawei_call_data_json_becomes_name_and_fields():
    data = {
        "controlid": "1536",
        "callData": json.dumps({"name": "Maya Lopez", "City": "Brooklyn", "Plan": "Gold"}),
    }
    assert offer_details(data) == ("Maya Lopez", {"City": "Brooklyn", "Plan": "Gold"})


def test_huawei_opaque_call_data_is_shown_as_one_field():
    assert offer_details({"callData": "ticket=77;vip"}) == ("", {"Call data": "ticket=77;vip"})


def test_genesys_user_data_without_platform_bookkeeping():
    record = {
        "userData": {
            "GSW_CAMPAIGN_NAME": "Demo",
            "GSW_RECORD_HANDLE": 431,
            "name": "Leo Weber",
            "Plan": "Silver",
        }
    }
    assert offer_details({"record": record}) == ("Leo Weber", {"Plan": "Silver"})


def test_odd_offers_never_raise():
    assert offer_details({}) == ("", {})
    assert offer_details({"callData": "[1, 2]", "record": "nope"}) == ("", {"Call data": "[1, 2]"})
