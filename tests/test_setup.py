def test_the_cast_and_the_demo_policy_are_ready(cast, policy):
    assert cast.alice.groups.get().name == "reviewer"
    assert set(cast.lex.groups.values_list("name", flat=True)) == {"legal", "executive"}
    assert "refund.issue" in policy.action_types
