"""Microsoft's own Graph SDK for Python (msgraph-sdk) reads m365-sim exactly as it would read
Microsoft Graph: only the base URL and the trusted CA differ.

Tokens come from MSAL (client secret) through a tiny kiota AccessTokenProvider, so no
azure-identity is involved.
"""

import asyncio
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlparse

import httpx
import msal
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.serialization import Parsable, ParseNode, SerializationWriter
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory
from msgraph_core.tasks.page_iterator import PageIterator

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]


class MsalTokenProvider(AccessTokenProvider):
    """Client-credentials tokens from MSAL for the sim's host only."""

    def __init__(self, app: msal.ConfidentialClientApplication, host: str):
        self.app = app
        self.validator = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        result = self.app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
        assert "access_token" in result, result
        return result["access_token"]

    def get_allowed_hosts_validator(self):
        return self.validator


def graph_client(sim, permissions):
    client_id = sim.register_app(
        display_name="msgraph-sdk test",
        client_secret="sdk-secret-value",
        permissions=permissions,
        consented=True,
    )
    app = msal.ConfidentialClientApplication(
        client_id,
        authority=sim.authority,
        client_credential="sdk-secret-value",
        verify=sim.ca_file,
        instance_discovery=False,
        token_cache=msal.TokenCache(),
    )
    host = urlparse(sim.base_url).hostname
    auth = BaseBearerTokenAuthenticationProvider(MsalTokenProvider(app, host))
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=sim.ca_file, timeout=30)
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{sim.base_url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


@dataclass
class DirectoryUser(Parsable):
    """The few user properties the paging check selects.

    msgraph-sdk's generated `User` model deserialises at ~35 ms per user (it walks every Graph
    property on each object), so 2,500 users would take minutes; a slim kiota model parsed by
    the same request adapter keeps the check fast and still exercises the SDK's HTTP stack.
    """

    id: Optional[str] = None
    display_name: Optional[str] = None
    user_type: Optional[str] = None
    account_enabled: Optional[bool] = None

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> "DirectoryUser":
        return DirectoryUser()

    def get_field_deserializers(self) -> dict[str, Callable[[ParseNode], None]]:
        return {
            "id": lambda n: setattr(self, "id", n.get_str_value()),
            "displayName": lambda n: setattr(self, "display_name", n.get_str_value()),
            "userType": lambda n: setattr(self, "user_type", n.get_str_value()),
            "accountEnabled": lambda n: setattr(self, "account_enabled", n.get_bool_value()),
        }

    def serialize(self, writer: SerializationWriter) -> None:
        writer.write_str_value("id", self.id)


@dataclass
class DirectoryUserPage(Parsable):
    """A page of [`DirectoryUser`] with Graph's `@odata.nextLink`."""

    value: Optional[list] = None
    odata_next_link: Optional[str] = None

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> "DirectoryUserPage":
        return DirectoryUserPage()

    def get_field_deserializers(self) -> dict[str, Callable[[ParseNode], None]]:
        return {
            "value": lambda n: setattr(
                self, "value", n.get_collection_of_object_values(DirectoryUser)
            ),
            "@odata.nextLink": lambda n: setattr(self, "odata_next_link", n.get_str_value()),
        }

    def serialize(self, writer: SerializationWriter) -> None:
        writer.write_str_value("@odata.nextLink", self.odata_next_link)


def test_graph_sdk_lists_every_user_through_all_pages(sim):
    client = graph_client(sim, ["User.Read.All"])
    adapter = client.request_adapter

    async def run():
        first = RequestInformation()
        first.http_method = Method.GET
        first.url = (
            f"{sim.base_url}/v1.0/users?$top=999"
            "&$select=id,displayName,userPrincipalName,userType,accountEnabled"
        )
        page = await adapter.send_async(first, DirectoryUserPage, {"4XX": ODataError, "5XX": ODataError})
        users = []
        pages = 1

        def collect(user):
            users.append(user)
            return True

        iterator = PageIterator(page, adapter)
        original_next = iterator.next

        async def counting_next():
            nonlocal pages
            result = await original_next()
            if result is not None:
                pages += 1
            return result

        iterator.next = counting_next
        await iterator.iterate(collect)
        # The generated SDK model reads the same collection (one short page).
        typed = await client.users.get(
            request_configuration=UsersRequestBuilder.UsersRequestBuilderGetRequestConfiguration(
                query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=3)
            )
        )
        return users, pages, typed

    users, pages, typed = asyncio.run(run())
    # 2,500 generated users plus Ann from the seed.
    assert len(users) == 2501
    assert pages == 3
    assert len({u.id for u in users}) == 2501
    assert any(u.user_type == "Guest" for u in users)
    assert any(u.account_enabled is False for u in users)
    assert any(u.display_name and not u.display_name.isascii() for u in users)
    assert len(typed.value) == 3 and typed.odata_next_link
    assert all(u.user_principal_name for u in typed.value)


def test_graph_sdk_reads_the_shared_mailbox_contacts(sim):
    client = graph_client(sim, ["User.Read.All", "Contacts.Read"])

    async def run():
        reception = await client.users.by_user_id("reception@contoso.example").get()
        page = await client.users.by_user_id(reception.id).contacts.get()
        contacts = list(page.value)
        while page.odata_next_link:
            page = await client.users.by_user_id(reception.id).contacts.with_url(page.odata_next_link).get()
            contacts.extend(page.value)
        folders = await client.users.by_user_id(reception.id).contact_folders.get()
        return reception, contacts, folders.value

    reception, contacts, folders = asyncio.run(run())
    assert reception.display_name == "Reception"
    assert len(contacts) == 25
    assert all(c.display_name for c in contacts)
    assert all(c.email_addresses and c.email_addresses[0].address for c in contacts)
    assert [f.display_name for f in folders] == ["Emergency"]


def test_graph_sdk_sees_graph_errors_as_odata_errors(sim):
    client = graph_client(sim, ["User.Read.All"])

    async def run():
        try:
            await client.users.by_user_id("nobody@contoso.example").get()
        except ODataError as e:
            return e
        return None

    err = asyncio.run(run())
    assert err is not None
    assert err.response_status_code == 404
    assert err.error.code == "Request_ResourceNotFound"


def test_graph_sdk_counts_users_with_consistency_level_eventual(sim):
    """`$count` and `/users/$count` as the SDK sends them; Graph needs `ConsistencyLevel: eventual`
    (https://learn.microsoft.com/graph/aad-advanced-queries)."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration

    client = graph_client(sim, ["User.Read.All"])

    def eventual(query_parameters=None):
        config = RequestConfiguration(query_parameters=query_parameters)
        config.headers.add("ConsistencyLevel", "eventual")
        return config

    async def run():
        total = await client.users.count.get(request_configuration=eventual())
        page = await client.users.get(
            request_configuration=eventual(
                UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                    count=True, filter="startswith(displayName,'Ann Archer')", top=5
                )
            )
        )
        try:
            await client.users.count.get()
            refused = None
        except ODataError as e:
            refused = e
        return total, page, refused

    total, page, refused = asyncio.run(run())
    assert total == 2501
    assert page.odata_count == len(page.value) >= 1
    assert refused is not None and refused.response_status_code == 400


def test_graph_sdk_checks_member_groups_transitively(sim_factory, seed):
    """`POST /users/{id}/checkMemberGroups` as the SDK sends it: the named groups the user is
    in, through nested groups too, at most 20 per request
    (https://learn.microsoft.com/graph/api/directoryobject-checkmembergroups)."""
    from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
        CheckMemberGroupsPostRequestBody,
    )

    outer = "66666666-6666-6666-6666-666666666601"
    inner = "66666666-6666-6666-6666-666666666602"
    other = "66666666-6666-6666-6666-666666666603"
    with_groups = dict(seed)
    with_groups["groups"] = [
        {"id": outer, "displayName": "All staff", "members": [inner]},
        {"id": inner, "displayName": "Sales", "members": ["ann@contoso.example"]},
        {"id": other, "displayName": "Board", "members": []},
    ]
    s = sim_factory(seed=with_groups)
    client = graph_client(s, ["GroupMember.Read.All"])
    ann = client.users.by_user_id("11111111-1111-1111-1111-111111111111")

    async def run():
        found = await ann.check_member_groups.post(
            CheckMemberGroupsPostRequestBody(group_ids=[outer, other])
        )
        try:
            await ann.check_member_groups.post(
                CheckMemberGroupsPostRequestBody(
                    group_ids=[f"66666666-6666-6666-6666-6666666667{i:02}" for i in range(21)]
                )
            )
            refused = None
        except ODataError as e:
            refused = e
        return found, refused

    found, refused = asyncio.run(run())
    assert found.value == [outer]
    assert refused is not None and refused.response_status_code == 400
