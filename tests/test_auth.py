from group_orders.services import accounts
from group_orders.enums import ApplicationSlug
from group_orders.services.demo import demo_id


async def test_probe(graphql, client, demo, engine):
    q = '{ groupOrder(id: "%s", application: %s) { id } }'
    for tok, app in [("reporting", "planoorder"), ("acme-integration", "planox2"), ("acme-integration", "planoauth")]:
        r = await graphql.post(q % (demo.group_orders["acme-completed"], app), token=demo.tokens[tok])
        print(r.status_code, r.headers, r.text)
    r = await graphql.post("{ session(application: planox2) { userId } }", token=demo.tokens["acme-integration"])
    print(r.status_code, r.headers, r.text)
    r = await client.post("/graphql", json={"query": "{ __schema { queryType { name } } session { userId } }"})
    print(r.status_code, r.headers, r.text)
