"""The haproxy role's configuration, rendered from its template: on the
front VIP (no relay) HAProxy gives up on a silent switch as the relay did;
behind the relay (TLS) it listens on loopback with accept-proxy only."""

from pathlib import Path

import jinja2

TEMPLATE = Path(__file__).resolve().parents[3] / "roles" / "haproxy" / "templates" / "haproxy.cfg.j2"


def render(behind_mirror: bool, switch_timeout: int = 15, section: str = "frontend", **settings) -> list[str]:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["bool"] = bool
    text = env.from_string(TEMPLATE.read_text()).render(
        ansible_managed="test",
        haproxy_maxconn=20000,
        haproxy_stats_socket="/run/haproxy/admin.sock",
        haproxy_hard_stop_after="10m",
        haproxy_timeout_connect="500ms",
        haproxy_retries=2,
        haproxy_timeout_client="1h",
        haproxy_timeout_server="1h",
        haproxy_timeout_tunnel="1d",
        haproxy_behind_mirror=behind_mirror,
        haproxy_bind_address="127.0.0.1" if behind_mirror else "198.18.2.100",
        haproxy_ports=[16653] if behind_mirror else [6653, 6633],
        haproxy_switch_timeout=switch_timeout,
        haproxy_balance="source",
        haproxy_hash_type=settings.get("hash_type", "consistent"),
        haproxy_hash_balance_factor=settings.get("balance_factor", 120),
        haproxy_check_timeout="3s",
        haproxy_check_interval="1s",
        haproxy_check_fall=2,
        haproxy_check_rise=2,
        haproxy_error_limit=settings.get("error_limit", 3),
        haproxy_backends=[{"name": "ctl2", "address": "198.18.3.22"}],
        haproxy_backend_port=6653,
    )
    start, backend = text.index("frontend openflow"), text.index("backend controllers")
    lines = {"defaults": text[:start], "frontend": text[start:backend], "backend": text[backend:]}[section]
    return [line.strip() for line in lines.splitlines() if line.strip()]


def test_on_the_front_vip_a_silent_switch_is_given_up_after_the_timeout():
    front = render(behind_mirror=False)
    assert "bind 198.18.2.100:6653 tcp-ut 15s" in front and "bind 198.18.2.100:6633 tcp-ut 15s" in front
    # idle 5 s, then a probe every 2 s, 5 of them: the relay's keep_alive(15) did the same
    assert {"clitcpka-idle 5s", "clitcpka-intvl 2s", "clitcpka-cnt 5"} <= set(front)
    assert not any("accept-proxy" in line for line in front)


def test_behind_the_relay_haproxy_takes_proxy_headers_on_loopback_only():
    front = render(behind_mirror=True)
    assert "bind 127.0.0.1:16653 accept-proxy" in front
    assert not any(line.startswith(("clitcpka", "bind 198.18")) or "tcp-ut" in line for line in front)


def test_a_zero_timeout_leaves_the_kernel_defaults():
    front = render(behind_mirror=False, switch_timeout=0)
    assert "bind 198.18.2.100:6653" in front
    assert not any("tcp-ut" in line or line.startswith("clitcpka") for line in front)


def test_consistent_hashing_bounds_each_backups_load_unless_turned_off():
    assert "hash-balance-factor 120" in render(False, section="backend")
    assert not any(
        line.startswith("hash-balance-factor") for line in render(False, section="backend", balance_factor=0)
    )
    map_based = render(False, section="backend", hash_type="map-based")
    assert "hash-type map-based" in map_based and not any("hash-balance-factor" in line for line in map_based)


def test_a_connect_to_a_dead_backup_fails_within_a_switchs_first_second_and_goes_to_another():
    defaults = render(False, section="defaults")
    assert {"timeout connect 500ms", "retries 2", "option redispatch 1"} <= set(defaults)


def test_a_backup_whose_connects_fail_three_times_in_a_row_is_marked_down_at_once():
    server = next(line for line in render(False, section="backend") if line.startswith("default-server"))
    assert server.endswith("on-marked-down shutdown-sessions observe layer4 error-limit 3 on-error mark-down")
    off = next(line for line in render(False, section="backend", error_limit=0) if line.startswith("default-server"))
    assert off.endswith("on-marked-down shutdown-sessions")
