"""The management HTTP API's administration resources: users, permissions, vhosts
and their limits, policies, feature flags, definitions, and declaring queues and
exchanges with every option the API takes.

Built on the same transport as rabbit/management.py (rabbit/management_http.py:
timeouts, BrokerError kinds). Nothing here decides what is valid: the console's
plain modules check the input before it gets here, and the broker's own refusal
comes back as a BrokerRejected carrying its words.
"""

from typing import Literal

from rabbit.management_http import JSON, BrokerNotFound, ManagementHTTP, segment

PolicyKind = Literal["policies", "operator-policies"]
POLICY_KINDS: tuple[PolicyKind, ...] = ("policies", "operator-policies")
VHOST_LIMITS = ("max-connections", "max-queues")
USER_LIMITS = ("max-connections", "max-channels")


class Administration:
    """Administration calls against one broker, through its ManagementHTTP transport."""

    def __init__(self, http: ManagementHTTP) -> None:
        self.http = http

    def _change(self, method: str, path: str, body: JSON | None = None) -> None:
        """A change whose resource answers 406 to a request that accepts only JSON
        (limits, feature flags): it goes out accepting anything."""
        self.http.request(method, path, json=body, headers={"Accept": "*/*"})

    # --- broker -------------------------------------------------------------

    def overview(self) -> JSON:
        return self.http.get_object("overview")

    def exchange_types(self) -> list[str]:
        """The exchange types the broker offers, plugin types included (e.g. x-delayed-message)."""
        types = self.overview().get("exchange_types") or []
        return [str(t.get("name")) for t in types if t.get("name") and t.get("enabled", True)]

    # --- declaring queues and exchanges -------------------------------------

    def declare_queue(
        self, vhost: str, name: str, durable: bool, auto_delete: bool, arguments: JSON
    ) -> None:
        self.http.put(
            f"queues/{segment(vhost)}/{segment(name)}",
            {"durable": durable, "auto_delete": auto_delete, "arguments": arguments},
        )

    def declare_exchange(
        self,
        vhost: str,
        name: str,
        type_: str,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: JSON,
    ) -> None:
        self.http.put(
            f"exchanges/{segment(vhost)}/{segment(name)}",
            {
                "type": type_,
                "durable": durable,
                "auto_delete": auto_delete,
                "internal": internal,
                "arguments": arguments,
            },
        )

    def queue_exists(self, vhost: str, name: str) -> bool:
        return self._exists(f"queues/{segment(vhost)}/{segment(name)}")

    def exchange_exists(self, vhost: str, name: str) -> bool:
        return self._exists(f"exchanges/{segment(vhost)}/{segment(name)}")

    def _exists(self, path: str) -> bool:
        try:
            self.http.get(path, params={"columns": "name"})
        except BrokerNotFound:
            return False
        return True

    # --- users ----------------------------------------------------------------

    def users(self) -> list[JSON]:
        return self.http.get_list("users")

    def user(self, name: str) -> JSON:
        return self.http.get_object(f"users/{segment(name)}")

    def create_user(self, name: str, password: str, tags: list[str]) -> None:
        """A new user; an empty password makes one that cannot log in with a password
        (certificates or another mechanism only)."""
        body: JSON = {"tags": ",".join(tags)}
        if password:
            body["password"] = password
        else:
            body["password_hash"] = ""
        self.http.put(f"users/{segment(name)}", body)

    def update_user(self, name: str, tags: list[str], password: str | None) -> None:
        """New tags, and a new password when given; otherwise the stored hash is
        sent back as it is (a PUT without one would leave no password)."""
        body: JSON = {"tags": ",".join(tags)}
        if password:
            body["password"] = password
        else:
            current = self.user(name)
            body["password_hash"] = current.get("password_hash", "")
            body["hashing_algorithm"] = current.get("hashing_algorithm", "")
        self.http.put(f"users/{segment(name)}", body)

    def delete_user(self, name: str) -> None:
        self.http.delete(f"users/{segment(name)}")

    # --- permissions ----------------------------------------------------------

    def permissions(self) -> list[JSON]:
        return self.http.get_list("permissions")

    def user_permissions(self, user: str) -> list[JSON]:
        return self.http.get_list(f"users/{segment(user)}/permissions")

    def vhost_permissions(self, vhost: str) -> list[JSON]:
        return self.http.get_list(f"vhosts/{segment(vhost)}/permissions")

    def set_permissions(self, vhost: str, user: str, configure: str, write: str, read: str) -> None:
        self.http.put(
            f"permissions/{segment(vhost)}/{segment(user)}",
            {"configure": configure, "write": write, "read": read},
        )

    def clear_permissions(self, vhost: str, user: str) -> None:
        self.http.delete(f"permissions/{segment(vhost)}/{segment(user)}")

    def user_topic_permissions(self, user: str) -> list[JSON]:
        return self.http.get_list(f"users/{segment(user)}/topic-permissions")

    def set_topic_permissions(
        self, vhost: str, user: str, exchange: str, write: str, read: str
    ) -> None:
        self.http.put(
            f"topic-permissions/{segment(vhost)}/{segment(user)}",
            {"exchange": exchange, "write": write, "read": read},
        )

    def clear_topic_permissions(self, vhost: str, user: str) -> None:
        """Every topic permission of the user in the vhost (the API clears them together)."""
        self.http.delete(f"topic-permissions/{segment(vhost)}/{segment(user)}")

    # --- vhosts and limits ------------------------------------------------------

    def vhosts(self) -> list[JSON]:
        return self.http.get_list("vhosts")

    def vhost(self, name: str) -> JSON:
        return self.http.get_object(f"vhosts/{segment(name)}")

    def create_vhost(
        self, name: str, description: str, tags: list[str], default_queue_type: str
    ) -> None:
        body: JSON = {"description": description, "tags": ",".join(tags)}
        if default_queue_type:
            # 3.10 reads defaultqueuetype (the management UI's field); later
            # versions document default_queue_type. Each ignores the other.
            body["defaultqueuetype"] = default_queue_type
            body["default_queue_type"] = default_queue_type
        self.http.put(f"vhosts/{segment(name)}", body)

    def delete_vhost(self, name: str) -> None:
        self.http.delete(f"vhosts/{segment(name)}")

    def vhost_limits(self, vhost: str) -> dict[str, int]:
        """{"max-connections": n, ...}: only the limits that are set."""
        answer = self.http.get_list(f"vhost-limits/{segment(vhost)}")
        return {k: int(v) for item in answer or [] for k, v in (item.get("value") or {}).items()}

    def all_vhost_limits(self) -> dict[str, dict[str, int]]:
        answer = self.http.get_list("vhost-limits")
        return {
            str(item.get("vhost")): {k: int(v) for k, v in (item.get("value") or {}).items()}
            for item in answer or []
        }

    def set_vhost_limit(self, vhost: str, limit: str, value: int) -> None:
        self._change("PUT", f"vhost-limits/{segment(vhost)}/{segment(limit)}", {"value": value})

    def clear_vhost_limit(self, vhost: str, limit: str) -> None:
        self._change("DELETE", f"vhost-limits/{segment(vhost)}/{segment(limit)}")

    def user_limits(self, user: str) -> dict[str, int]:
        answer = self.http.get_list(f"user-limits/{segment(user)}")
        return {k: int(v) for item in answer or [] for k, v in (item.get("value") or {}).items()}

    def set_user_limit(self, user: str, limit: str, value: int) -> None:
        self._change("PUT", f"user-limits/{segment(user)}/{segment(limit)}", {"value": value})

    def clear_user_limit(self, user: str, limit: str) -> None:
        self._change("DELETE", f"user-limits/{segment(user)}/{segment(limit)}")

    # --- policies and operator policies -----------------------------------------

    def policies(self, kind: PolicyKind, vhost: str | None = None) -> list[JSON]:
        path = f"{kind}/{segment(vhost)}" if vhost else kind
        return self.http.get_list(path)

    def policy(self, kind: PolicyKind, vhost: str, name: str) -> JSON:
        return self.http.get_object(f"{kind}/{segment(vhost)}/{segment(name)}")

    def put_policy(
        self,
        kind: PolicyKind,
        vhost: str,
        name: str,
        pattern: str,
        definition: JSON,
        priority: int,
        apply_to: str,
    ) -> None:
        self.http.put(
            f"{kind}/{segment(vhost)}/{segment(name)}",
            {
                "pattern": pattern,
                "definition": definition,
                "priority": priority,
                "apply-to": apply_to,
            },
        )

    def delete_policy(self, kind: PolicyKind, vhost: str, name: str) -> None:
        self.http.delete(f"{kind}/{segment(vhost)}/{segment(name)}")

    # --- the cluster's name -----------------------------------------------------

    def cluster_name(self) -> str:
        return str((self.http.get("cluster-name") or {}).get("name", ""))

    def set_cluster_name(self, name: str) -> None:
        self.http.put("cluster-name", {"name": name})

    # --- feature flags ------------------------------------------------------------

    def feature_flags(self) -> list[JSON]:
        return self.http.get_list("feature-flags")

    def enable_feature_flag(self, name: str) -> None:
        self._change("PUT", f"feature-flags/{segment(name)}/enable", {})

    # --- definitions ----------------------------------------------------------------

    def definitions(self, vhost: str | None = None) -> JSON:
        path = f"definitions/{segment(vhost)}" if vhost else "definitions"
        return self.http.get_object(path)

    def import_definitions(self, definitions: JSON, vhost: str | None = None) -> None:
        path = f"definitions/{segment(vhost)}" if vhost else "definitions"
        self.http.post(path, definitions)
