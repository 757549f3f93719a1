"""istio-cni's rules as seed 002 shows them, their canonical form and the reconciliation decision."""

from __future__ import annotations

import pytest

from components.cni import rules
from components.cni.rules import MANGLE, NAT, RuleView, Verdict

# The agent's log in seed 002 ("Running iptables-restore with the following input:").
SEED_RESTORE_INPUT = """\
* nat
-N ISTIO_OUTPUT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -d 169.254.7.127 -p tcp -m tcp -j ACCEPT
-A ISTIO_OUTPUT -p tcp -m mark --mark 0x111/0xfff -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001
COMMIT
* mangle
-N ISTIO_PRERT
-N ISTIO_OUTPUT
-A PREROUTING -j ISTIO_PRERT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff
-A ISTIO_PRERT -s 169.254.7.127 -p tcp -m tcp -j ACCEPT
-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -i lo -j ACCEPT
-A ISTIO_PRERT -p tcp -m tcp --dport 15008 -m mark ! --mark 0x539/0xfff -j TPROXY --on-port 15008 --tproxy-mark 0x111/0xfff
-A ISTIO_PRERT -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j TPROXY --on-port 15006 --tproxy-mark 0x111/0xfff
-A ISTIO_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff
COMMIT"""

# `iptables-save` in the pod in seed 002 (the rule lines of each table).
SEED_SAVE_MANGLE = """\
-A PREROUTING -j ISTIO_PRERT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff
-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff
-A ISTIO_PRERT -s 169.254.7.127/32 -p tcp -m tcp -j ACCEPT
-A ISTIO_PRERT ! -d 127.0.0.1/32 -i lo -p tcp -j ACCEPT
-A ISTIO_PRERT -p tcp -m tcp --dport 15008 -m mark ! --mark 0x539/0xfff -j TPROXY --on-port 15008 --on-ip 0.0.0.0 --tproxy-mark 0x111/0xfff
-A ISTIO_PRERT -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x111/0xfff""".splitlines()
SEED_SAVE_NAT = """\
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -d 169.254.7.127/32 -p tcp -m tcp -j ACCEPT
-A ISTIO_OUTPUT -p tcp -m mark --mark 0x111/0xfff -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001""".splitlines()

HOST_RESTORE_INPUT = """\
* nat
-N ISTIO_POSTRT
-I POSTROUTING 1 -j ISTIO_POSTRT
-A ISTIO_POSTRT -m owner --socket-exists -p tcp -m set --match-set istio-inpod-probes-v4 dst -j SNAT --to-source 169.254.7.127
COMMIT"""


def test_restore_input_is_the_agents_log_of_seed_002():
    assert rules.restore_input(rules.inpod_ruleset()) == SEED_RESTORE_INPUT


def test_save_lines_are_iptables_save_of_seed_002():
    ruleset = rules.inpod_ruleset()
    assert rules.save_lines(ruleset, MANGLE) == SEED_SAVE_MANGLE
    assert rules.save_lines(ruleset, NAT) == SEED_SAVE_NAT


def test_nat_is_restored_first_so_iptables_save_prints_mangle_first():
    # A new netns lists tables newest first: the agent's order (nat, then mangle) gives seed 002's.
    assert rules.inpod_ruleset().tables == [NAT, MANGLE]


def test_host_rule_is_hostprobe_golden():
    host = rules.host_ruleset()
    assert rules.restore_input(host) == HOST_RESTORE_INPUT
    assert rules.save_lines(host, NAT) == [
        "-A POSTROUTING -j ISTIO_POSTRT",
        "-A ISTIO_POSTRT -p tcp -m owner --socket-exists -m set --match-set istio-inpod-probes-v4 dst "
        "-j SNAT --to-source 169.254.7.127",
    ]
    assert host.rules[0].insert


def test_parse_splits_options_and_negations():
    parsed = rules.parse(tuple("! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -m set --match-set s dst "
                               "-j CONNMARK --restore-mark --nfmask 0xffffffff".split()))
    assert parsed.address == {"-d": (True, "127.0.0.1/32"), "-p": (False, "tcp")}
    assert parsed.matches == [("mark", [(True, "--mark", ["0x539/0xfff"])]), ("set", [(False, "--match-set", ["s", "dst"])])]
    assert (parsed.target, parsed.target_options) == (
        "CONNMARK", [(False, "--restore-mark", []), (False, "--nfmask", ["0xffffffff"])])
    with pytest.raises(ValueError):
        rules.parse(("-x", "y"))


def test_kernel_rules_render_as_iptables_save_does():
    # What python-iptables reports for two of the pod's rules.
    tproxy = RuleView(dst="!127.0.0.1/255.255.255.255", protocol="tcp",
                      matches=(("mark", (("mark", ("!", "0x539/0xfff")),)),),
                      target="TPROXY", target_parameters=(("on-port", ("15006",)), ("on-ip", ("0.0.0.0",)),
                                                          ("tproxy-mark", ("0x111/0xfff",))))
    assert " ".join(rules.view_save_args(tproxy)) == SEED_SAVE_MANGLE[-1].split(" ", 2)[2]
    accept = RuleView(dst="!127.0.0.1/255.255.255.255", in_interface="lo", protocol="tcp", target="ACCEPT")
    assert " ".join(rules.view_save_args(accept)) == "! -d 127.0.0.1/32 -i lo -p tcp -j ACCEPT"
    jump = RuleView(target="ISTIO_PRERT")
    assert rules.view_save_args(jump) == ("-j", "ISTIO_PRERT")
    other = RuleView(src="10.0.0.0/255.0.0.0", out_interface="!eth0", protocol="!udp",
                     matches=(("owner", (("socket-exists", ()),)),), target="")
    assert rules.view_save_args(other) == ("-s", "10.0.0.0/8", "!", "-o", "eth0", "!", "-p", "udp",
                                           "-m", "owner", "--socket-exists")


def _state(**overrides):
    """The expected state of the pod's rules, plus foreign rules and chains, with `overrides` per chain."""
    state = {table: {chain: tuple(r) for chain, r in chains.items()}
             for table, chains in rules.expected_state(rules.inpod_ruleset()).items()}
    state[NAT]["PREROUTING"] = (("-p", "tcp", "-j", "KUBE-SERVICES"),)
    state[NAT]["POSTROUTING"] = ()
    state[NAT]["OUTPUT"] = (("-j", "KUBE-SERVICES"),) + state[NAT]["OUTPUT"]
    state[MANGLE]["INPUT"] = ()
    for key, value in overrides.items():
        table, chain = key.split("__")
        if value is None:
            state[table].pop(chain, None)
        else:
            state[table][chain] = value
    return state


def _without_ours(state):
    return {table: {chain: tuple(r for r in rs if not rules.jumps_into_owned(r))
                    for chain, rs in chains.items() if not rules.is_owned(chain)}
            for table, chains in state.items()}


def test_decide_clean_when_nothing_of_ours_is_there():
    ruleset = rules.inpod_ruleset()
    assert rules.decide({}, ruleset) is Verdict.CLEAN
    assert rules.decide({NAT: {}, MANGLE: {}}, ruleset) is Verdict.CLEAN
    assert rules.decide(_without_ours(_state()), ruleset) is Verdict.CLEAN


def test_decide_compatible_ignores_rules_that_are_not_ours():
    assert rules.decide(_state(), rules.inpod_ruleset()) is Verdict.COMPATIBLE


PRERT = rules.expected_state(rules.inpod_ruleset())[MANGLE]["ISTIO_PRERT"]


@pytest.mark.parametrize("overrides", [
    {"mangle__ISTIO_PRERT": PRERT[:-1]},  # a rule missing
    {"mangle__ISTIO_PRERT": PRERT + PRERT[-1:]},  # a rule twice
    {"mangle__ISTIO_PRERT": PRERT[1:] + PRERT[:1]},  # reordered
    {"mangle__ISTIO_PRERT": ()},  # flushed
    {"mangle__ISTIO_PRERT": None},  # chain gone, jump left
    {"mangle__PREROUTING": ()},  # jump gone, chain left
    {"mangle__PREROUTING": (("-j", "ISTIO_PRERT"), ("-j", "ISTIO_PRERT"))},  # jump twice (added twice, #50072)
    {"nat__ISTIO_OLD": ()},  # a chain of ours nobody wants
    {"nat__ISTIO_OUTPUT": (("-p", "tcp", "-j", "REDIRECT", "--to-ports", "15002"),)},  # other ports
])
def test_decide_reconcile_on_any_difference(overrides):
    assert rules.decide(_state(**overrides), rules.inpod_ruleset()) is Verdict.RECONCILE


def test_decide_reconcile_on_partial_leftovers():
    leftovers = {NAT: {"OUTPUT": (("-j", "ISTIO_OUTPUT"),), "ISTIO_OUTPUT": ()}}
    assert rules.decide(leftovers, rules.inpod_ruleset()) is Verdict.RECONCILE


def test_verdicts_log_as_the_real_agent_does():
    assert Verdict.CLEAN.value == "Clean-state detected, new iptables are needed"
    assert Verdict.COMPATIBLE.value == ("Found compatible residues of old iptables rules/chains, "
                                        "reconciliation not needed")
    assert Verdict.RECONCILE.value == "Found residues of old iptables rules/chains, reconciliation is recommended"
