"""Marketer endpoints: marketing lists and their members."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from outreach.people import lists
from outreach.schemas.common import PageQuery, page_of
from outreach.schemas.people import ListIn, MarketingList, Member, MembersAdded, MembersIn
from outreach.web.api.auth import access, require_api_key
from outreach.web.common import load_body, load_query, store
from outreach.web.openapi import operation

bp = Blueprint("lists", __name__)
require_api_key(bp)

_list = MarketingList()
ListPage = page_of(MarketingList)
MemberPage = page_of(Member)


@bp.get("/api/v1/lists")
@access("lists", "read")
@operation("Marketing lists", query=PageQuery, responses={200: ListPage}, tag="lists")
def get_lists() -> Any:
    q = load_query(PageQuery())
    return jsonify(ListPage().dump(lists.find_lists(store(), limit=q["limit"], cursor=q["cursor"])))


@bp.post("/api/v1/lists")
@access("lists", "write")
@operation("Create a manual list and its parallel list", body=ListIn,
           responses={201: MarketingList}, tag="lists")
def post_list() -> Any:
    data = load_body(ListIn())
    created = lists.create_list_pair(store(), data["name"], data["member_type"],
                                     data.get("account_contacts"))
    return jsonify(_list.dump(created)), 201


@bp.get("/api/v1/lists/<list_id>")
@access("lists", "read")
@operation("Read a list", responses={200: MarketingList}, errors=(404,), tag="lists")
def get_list(list_id: str) -> Any:
    return jsonify(_list.dump(lists.get_list(store(), list_id)))


@bp.get("/api/v1/lists/<list_id>/members")
@access("lists", "read")
@operation("Members of a list", query=PageQuery, responses={200: MemberPage}, errors=(404,),
           tag="lists")
def get_members(list_id: str) -> Any:
    q = load_query(PageQuery())
    result = lists.list_members(store(), list_id, limit=q["limit"], cursor=q["cursor"])
    return jsonify(MemberPage().dump(result))


@bp.post("/api/v1/lists/<list_id>/members")
@access("lists", "write")
@operation("Add known people to a list by address", body=MembersIn,
           responses={200: MembersAdded}, errors=(404,), tag="lists")
def post_members(list_id: str) -> Any:
    data = load_body(MembersIn())
    return jsonify(MembersAdded().dump(lists.add_members(store(), list_id, data["emails"],
                                                         data["account_ids"])))
