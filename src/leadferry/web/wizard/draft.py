"""The dataset a user is putting together in Add DataSet (or Edit): what each pane holds.

Nothing is kept on the server between panes: every request posts the whole form (the current
pane's controls, the others' as hidden fields) and a :class:`Draft` is rebuilt from it. Each pane
checks its own controls (:meth:`Draft.check`, errors keyed by control name); Save checks them
all again and saves through the service layer, as the CLI and the REST API do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from leadferry.connectors import CONNECTORS, get_connector
from leadferry.connectors.base import DATE_LABELS, scrub_url
from leadferry.errors import (
    ConfigError,
    ConflictError,
    ConnectorError,
    InvalidWindowError,
    NotFoundError,
)
from leadferry.schedule import Schedule
from leadferry.scrub import scrub
from leadferry.service.accounts import add_account
from leadferry.service.datasets import (
    DISPLAY_NAME_MOST,
    SPEC_FIELDS,
    create_dataset,
    edit_dataset,
    schedule_changes,
    set_schedule,
    upcoming_runs,
    validate,
)
from leadferry.store import DatasetSpec
from leadferry.store.records import AccountLine, check_account_name, check_dataset_name
from leadferry.web.wizard import controls
from leadferry.web.wizard.controls import FormError

if TYPE_CHECKING:
    from leadferry.connectors.base import Connector, CredentialField, Report
    from leadferry.dates import DateWindow
    from leadferry.store import AccountSummary, Dataset, Store, User

NEW_ACCOUNT = "__new__"
"""The account menu's "Add an account" choice (no account name can start with '_')."""
INLINE_PREFIX = "acct_"
"""Prefix of the inline account's credential controls (``acct_api_key``): never carried."""
_POSTED_PREFIXES = ("param_", INLINE_PREFIX)
_INLINE_CONTROLS = ("account_name", "save_anyway")
"""The inline account's own controls: posted with Next, never carried."""
AccountTester = Callable[[str, str, Mapping[str, str]], str]
"""(account name, connector name, field values) -> the vendor's label; raises ConnectorError
when the vendor refuses the credentials or cannot be reached."""

STEPS = ("credentials", "details", "scheduling", "name")
STEP_TITLES = {
    "credentials": "Credentials",
    "details": "Details",
    "scheduling": "Scheduling",
    "name": "Name & Describe",
}
STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "credentials": ("connector", "account"),
    "details": ("report", "timezone", *controls.DATE_CONTROLS),
    "scheduling": (
        "schedule_mode",
        "frequency",
        "every_n",
        "start_time",
        "days",
        "month_day",
        "advanced_kind",
        "cron",
        "rule",
        "schedule_timezone",
        "active_from",
        "active_to",
        "start_at",
        "stale_after",
        "alert_emails",
        "alert_webhook",
        "alert_webhook_remove",
        "retry",
        "retry_every",
        "retries",
        "when_failing",
        "update_method",
        "merge_key",
        "incremental",
        "lookback",
        "incremental_start",
    ),
    "name": ("name", "display_name", "description", "owner"),
}
"""The controls of each pane; the parameters (``param_<id>``) belong to Details too."""
CARRIED = tuple(name for names in STEP_FIELDS.values() for name in names)
_DEFAULTS = {
    "duration": "default",
    "report_date": "specific",
    "start_date_type": "specific",
    "end_date_type": "specific",
    "schedule_mode": "basic",
    "frequency": "manual",
    "start_time": "06:00",
    "month_day": "1",
    "advanced_kind": "cron",
    "retry": "none",
    "retry_every": "10",
    "retries": "3",
    "when_failing": "keep",
    "update_method": "replace",
    "lookback": "60",
}


@dataclasses.dataclass(frozen=True, slots=True)
class SchedulePreview:
    """What the Scheduling pane shows under the schedule: its description and next runs."""

    description: str = ""
    runs: tuple[dt.datetime, ...] = ()
    timezone: str = "UTC"
    error: str = ""


class Draft:
    """The controls of all four panes, with defaults filled in, and what they mean.

    Args:
        store: the metadata store.
        now: the app clock's time (windows and next runs are shown for it).
        user: who is asking (the default owner).
        values: control name -> text (``days``: a list), as posted.
        dataset: the dataset being edited; None when adding one.
    """

    def __init__(
        self,
        store: Store,
        now: dt.datetime,
        user: User,
        values: Mapping[str, Any],
        dataset: Dataset | None = None,
    ) -> None:
        self.store = store
        self.now = now
        self.user = user
        self.dataset = dataset
        self.errors: dict[str, str] = {}
        self.account_tester: AccountTester | None = None
        """Tests an inline account's credentials before it is saved (see Credentials)."""
        self.values: dict[str, Any] = dict(values)
        self._given = set(values)  # what the user has seen: only that is carried between panes
        self._fill_defaults()

    @classmethod
    def from_form(
        cls,
        store: Store,
        now: dt.datetime,
        user: User,
        form: Any,
        dataset: Dataset | None = None,
        *,
        without: tuple[str, ...] = (),
    ) -> Draft:
        """A draft from a posted form (a Starlette ``FormData``), leaving out the controls
        *without* (so that they take their defaults)."""
        values: dict[str, Any] = {
            name: str(value)
            for name, value in form.multi_items()
            if name not in without
            and (name in CARRIED or name in _INLINE_CONTROLS or name.startswith(_POSTED_PREFIXES))
        }
        values["days"] = [str(day) for day in form.getlist("days")]
        return cls(store, now, user, values, dataset)

    @classmethod
    def of_dataset(
        cls, store: Store, now: dt.datetime, user: User, dataset: Dataset, *, clone: bool = False
    ) -> Draft:
        """A draft showing a saved dataset, for Edit; with *clone*, a new dataset of the same
        settings but for its name (to be chosen) and owner (who clones it). Its alert webhook
        is not copied: its query may hold a token, which pages never show."""
        from leadferry.service.datasets import dataset_zone

        report = get_connector(dataset.connector).report(dataset.report)
        timezone = dataset_zone(store, dataset)
        values: dict[str, Any] = {
            "account": dataset.account,
            "report": dataset.report,
            "timezone": timezone,
            "name": dataset.name,
            "display_name": dataset.display_name,
            "description": dataset.description,
            "owner": dataset.owner or "",
        }
        values |= {controls.param_control(k): str(v) for k, v in dataset.params.items()}
        values |= controls.date_controls(dataset.date_selection)
        values |= controls.schedule_controls(dataset.schedule, timezone)
        values |= controls.retry_controls(
            dataset.retry_every,
            dataset.retries,
            dataset.when_failing,
            dataset.stale_after,
            dataset.alert_emails,
        )
        values |= controls.update_controls(
            report, dataset.update_method, dataset.merge_key, dataset.incremental
        )
        if clone:
            del values["name"], values["display_name"], values["owner"]
            return cls(store, now, user, values)
        return cls(store, now, user, values, dataset)

    def _fill_defaults(self) -> None:
        values = self.values
        values["connector"] = self._connector_name()
        if "account" not in values:
            choices = self.accounts
            values["account"] = choices[0].name if choices else NEW_ACCOUNT
        connector = self.connector
        if connector is not None:
            slugs = [report.slug for report in connector.reports]
            if values.get("report") not in slugs:
                # Another connector's account was chosen: its report and zone no longer apply.
                values["report"] = slugs[0]
                values.pop("timezone", None)
            values.setdefault("timezone", self.account_zone)
        for name, value in _DEFAULTS.items():
            values.setdefault(name, value)
        values.setdefault("schedule_timezone", values.get("timezone") or "UTC")
        values.setdefault("days", [])
        values.setdefault("owner", self.user.name)
        report = self.report
        if report is not None and (
            "merge_key" not in values or values.get("update_method") != "merge"
        ):
            values["merge_key"] = controls.default_merge_key(report)

    def _connector_name(self) -> str:
        """The connector the Credentials pane starts from: a dataset's own; else the chosen
        account's (a form posted without the menu); else the one chosen; else the first one
        with accounts."""
        if self.dataset is not None:
            return self.dataset.connector
        summaries = self.store.list_accounts()
        account = next((a for a in summaries if a.name == self.values.get("account")), None)
        if account is not None:
            return account.connector
        if self.values.get("connector") in CONNECTORS:
            return str(self.values["connector"])
        used = {a.connector for a in summaries}
        return next((name for name in CONNECTORS if name in used), next(iter(CONNECTORS)))

    # -- what the panes show ------------------------------------------------------------------

    @property
    def editing(self) -> bool:
        return self.dataset is not None

    @property
    def action_url(self) -> str:
        return f"/datasets/{self.dataset.name}/edit" if self.dataset else "/datasets/new"

    @property
    def title(self) -> str:
        return f"Edit {self.dataset.name}" if self.dataset else "Add DataSet"

    def value(self, name: str) -> str:
        """The text of control *name* ('' when not set)."""
        value = self.values.get(name)
        return "" if value is None else str(value)

    @cached_property
    def accounts(self) -> list[AccountSummary]:
        """The accounts to choose from: those of the chosen connector."""
        chosen = self.values["connector"]
        return [a for a in self.store.list_accounts() if a.connector == chosen]

    @property
    def account(self) -> AccountSummary | None:
        name = self.values.get("account")
        return next((a for a in self.accounts if a.name == name), None)

    @property
    def connector(self) -> type[Connector] | None:
        account = self.account
        if account is not None:
            return get_connector(account.connector)
        return get_connector(self.dataset.connector) if self.dataset is not None else None

    @property
    def account_zone(self) -> str:
        """The zone the account's datasets default to, by the rule every dataset follows
        (:func:`~leadferry.run.plan.effective_timezone` without a zone of its own): the
        chosen account's, else its connector's; an account still to be added is what was
        typed for it, of the connector chosen for it."""
        from leadferry.run.plan import effective_timezone

        account = self.account or AccountLine(
            "", self.chosen_connector.name, self.new_account_values()
        )
        return effective_timezone(None, account, account.connector)

    @property
    def report(self) -> Report | None:
        connector = self.connector
        return connector.report(self.values["report"]) if connector else None

    @property
    def date_labels(self) -> dict[str, str]:
        connector = self.connector
        return dict(connector.date_labels if connector else DATE_LABELS)

    @property
    def chosen_connector(self) -> type[Connector]:
        """The connector chosen first on Credentials (that of an account added inline)."""
        return CONNECTORS[self.values["connector"]]

    def new_account_values(self) -> dict[str, str]:
        """What was typed for the inline account, secrets left out (never shown back).

        Another connector's default (LeadExec's base URL when AvidTrak is chosen instead) is
        dropped, so each connector's fields start from its own defaults.
        """
        connector = self.chosen_connector
        values = {}
        for field in connector.fields:
            name = INLINE_PREFIX + field.id
            if field.secret or name not in self.values:
                continue
            others = {
                other.default
                for each in CONNECTORS.values()
                if each is not connector
                for other in each.fields
                if other.id == field.id and other.default
            }
            if self.value(name) not in others - {field.default}:
                values[field.id] = self.value(name)
        return values

    def hidden_fields(self, step: str) -> Iterator[tuple[str, str]]:
        """The other panes' controls, carried as hidden fields on pane *step*."""
        own = set(STEP_FIELDS[step])
        for name in CARRIED:
            if name in own or name not in self._given:
                continue
            if name == "days":
                yield from (("days", day) for day in self.values["days"])
            else:
                yield name, self.value(name)
        if step != "details":
            for name, value in self.values.items():
                if name.startswith("param_"):
                    yield name, str(value)

    def window(self) -> tuple[DateWindow | None, str]:
        """The window the date controls select now, or None and why not."""
        try:
            timezone = controls.check_timezone(self.values, "timezone")
            return controls.resolve_window(self.values, timezone, self.now), ""
        except FormError as exc:
            return None, " ".join(exc.errors.values())

    def window_text(self) -> str:
        window, problem = self.window()
        return controls.window_text(window) if window else problem

    def schedule_preview(self) -> SchedulePreview:
        """The schedule the controls describe and its next five runs, in its zone."""
        try:
            plan = controls.schedule_from_form(self.values, self.values["days"])
        except FormError as exc:
            return SchedulePreview(error=" ".join(exc.errors.values()))
        runs = tuple(upcoming_runs(plan, self.now))
        return SchedulePreview(plan.describe(), runs, plan.timezone)

    def summary(self) -> list[tuple[str, str]]:
        """Every setting of the panes in words, for Name & Describe: (label, text) pairs.

        A control that is not valid shows what is wrong with it instead (Save sends the user
        back to its pane).
        """
        report = self.report
        connector = self.connector
        rows = [("Account", f"{self.value('account')} ({connector.label})" if connector else "")]
        if report is None:
            return rows
        rows.append(("Report", report.label))
        rows += [
            (param.label, self.value(controls.param_control(param.id)) or "(not set)")
            for param in report.params
        ]
        if report.dated:
            rows.append(("Dates", self._dates_text()))
        rows.append(("Time zone", self.value("timezone")))
        plan = self.schedule_preview()
        rows.append(("Schedule", plan.description or plan.error))
        rows += self._retry_rows()
        rows.append(("Update method", self._update_text(report)))
        rows.append(("Display name", self.value("display_name").strip() or "(its name)"))
        rows.append(("Owner", self.value("owner") or "(none)"))
        return rows

    def _dates_text(self) -> str:
        """``10 days back to 5 days back: 2026-11-13 .. 2026-11-18 in UTC (6 days) today``."""
        try:
            rule = controls.date_selection_from_form(self.values).describe()
        except FormError as exc:
            return " ".join(exc.errors.values())
        window, problem = self.window()
        return f"{rule}: {controls.window_span(window)} today" if window else f"{rule}: {problem}"

    def _retry_rows(self) -> list[tuple[str, str]]:
        try:
            retry = controls.retry_from_form(self.values)
        except FormError as exc:
            return [("Retries", " ".join(exc.errors.values()))]
        if retry.get("no_retry"):
            retries = "none: a failed scheduled run waits for the next one"
        else:
            retries = f"every {retry['retry_every']} minutes, up to {retry['retries']} times"
        rows = [
            ("Retries", retries),
            ("After the last failure", controls.WHEN_FAILING[retry["when_failing"]]),
        ]
        if "stale_after" in retry:
            rows.append(("Stale-data alert", f"after {retry['stale_after']} minutes"))
        webhook = retry.get("alert_webhook")
        if webhook is None:  # kept as saved (or none)
            webhook = self.saved_webhook
        targets = [*retry["alert_emails"], *([scrub_url(webhook)] if webhook else [])]
        rows.append(("Alerts to", ", ".join(targets) or "the service's alert targets only"))
        return rows

    @property
    def saved_webhook(self) -> str:
        """The edited dataset's alert webhook, without its query or user info ('' if none)."""
        saved = self.dataset.alert_webhook if self.dataset else None
        return scrub_url(saved) if saved else ""

    def _update_text(self, report: Report) -> str:
        try:
            chosen = controls.update_from_form(report, self.values)
        except FormError as exc:
            return " ".join(exc.errors.values())
        method = chosen.get("update_method", "replace")
        text = controls.UPDATE_METHODS.get(method, method)
        if method == "merge":
            text += f" on {chosen['merge_key'] or controls.default_merge_key(report)}"
            incremental = chosen["incremental"]
            if incremental:
                text += f"; incremental, re-reading {incremental['lookback_minutes']} minutes back"
                if incremental.get("start"):
                    text += f", the first run from {incremental['start']}"
        return text

    def update_methods(self) -> dict[str, str]:
        report = self.report
        return controls.update_methods(report) if report else {}

    def name_problem(self) -> str:
        """Why the dataset name cannot be used ('' when it can)."""
        name = self.value("name").strip()
        if self.dataset is not None:
            return ""
        if not name:
            return "Enter a name."
        try:
            check_dataset_name(name)
        except ConfigError as exc:
            return str(exc)
        try:
            self.store.get_dataset(name)
        except NotFoundError:
            return ""
        return f"A dataset named {name!r} already exists."

    # -- checking and saving ------------------------------------------------------------------

    def check(self, step: str) -> bool:
        """Check the controls of pane *step*; keep the errors in :attr:`errors`.

        Adding an account inline saves it here (so its secret is never carried).
        """
        self.errors = getattr(self, f"_check_{step}")()
        return not self.errors

    def _check_credentials(self) -> dict[str, str]:
        name = self.value("account")
        if name == NEW_ACCOUNT and not self.editing:
            return self._add_account()
        if not name:
            return {"account": "Choose an account, or add one."}
        if self.account is None:
            return {"account": f"There is no account named {name!r} to choose here."}
        return {}

    def _add_account(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        name = self.value("account_name").strip()
        try:
            check_account_name(name)
        except ConfigError as exc:
            errors["account_name"] = str(exc) if name else "Enter a name for the account."
        connector = self.chosen_connector
        given = {
            field.id: self.value(INLINE_PREFIX + field.id).strip()
            for field in connector.fields
            if self.value(INLINE_PREFIX + field.id).strip()
        }
        for field in connector.fields:
            if _needs_value(field) and field.id not in given:
                errors[field.id] = f"Enter the {field.label}."
        if "timezone" in given:
            try:
                controls.check_timezone(given, "timezone")
            except FormError as exc:
                errors |= exc.errors
        if any(account.name == name for account in self.store.list_accounts()):
            errors["account_name"] = f"An account named {name!r} already exists."
        if errors:
            return errors
        try:
            tested = self._test_account(name, connector, given)
            if not tested[0] and not self.value("save_anyway"):
                return {"account_test": tested[1]}
            add_account(self.store, name, connector.name, given)
        except ConflictError as exc:
            return {"account_name": str(exc)}
        except ConfigError as exc:
            return {"account": str(exc)}
        if self.account_tester is not None:
            self.store.record_account_test(name, *tested)
        self.__dict__.pop("accounts", None)
        self.values["account"] = name
        self._given.add("account")
        self._fill_defaults()
        return {}

    def _test_account(
        self, name: str, connector: type[Connector], given: Mapping[str, str]
    ) -> tuple[bool, str]:
        """Whether the vendor accepts the inline account's credentials, and what it said
        (untested, without an :attr:`account_tester`: accepted)."""
        if self.account_tester is None:
            return True, ""
        try:
            label = self.account_tester(name, connector.name, given)
        except ConnectorError as exc:
            return False, scrub(str(exc))
        return True, f"{label} accepted the credentials"

    def _check_details(self) -> dict[str, str]:
        report = self.report
        if report is None:
            return {"report": "Choose an account first (Back)."}
        errors: dict[str, str] = {}
        for check in (
            lambda: controls.params_from_form(report, self.values),
            lambda: controls.check_timezone(self.values, "timezone"),
        ):
            try:
                check()
            except FormError as exc:
                errors |= exc.errors
        if report.dated:  # with the parameters' errors: every error shows at once
            try:
                controls.resolve_window(self.values, self.value("timezone"), self.now)
            except FormError as exc:
                errors |= exc.errors
        if not errors:
            try:
                validate(self.store, self.spec(update=False), self.now)
            except ConfigError as exc:
                errors["details"] = str(exc)
        return errors

    def _check_scheduling(self) -> dict[str, str]:
        report = self.report
        if report is None:
            return {"update_method": "Choose an account and a report first (Back)."}
        errors: dict[str, str] = {}
        plan: Schedule | None = None
        retry: dict[str, Any] = {}
        try:
            plan = controls.schedule_from_form(self.values, self.values["days"])
        except FormError as exc:
            errors |= exc.errors
        try:
            retry = controls.retry_from_form(self.values)
        except FormError as exc:
            errors |= exc.errors
        try:
            controls.update_from_form(report, self.values)
        except FormError as exc:
            errors |= exc.errors
        if plan is not None and not errors:
            try:
                schedule_changes(plan, **retry)
            except ConfigError as exc:
                errors["retry"] = str(exc)
        return errors

    def _check_name(self) -> dict[str, str]:
        errors = {}
        problem = self.name_problem()
        if problem:
            errors["name"] = problem
        if len(self.value("display_name").strip()) > DISPLAY_NAME_MOST:
            errors["display_name"] = f"Shorten the display name to {DISPLAY_NAME_MOST} characters."
        return errors

    def spec(self, *, update: bool = True) -> DatasetSpec:
        """The dataset the panes describe (checked panes only: raises FormError otherwise).

        *update* False leaves the update method at replace (Details is checked before
        Scheduling is filled in).
        """
        report = self.report
        if report is None:
            raise FormError({"account": "Choose an account."})
        timezone = controls.check_timezone(self.values, "timezone")
        chosen = controls.update_from_form(report, self.values) if update else {}
        selection = controls.report_dates(report, self.values)
        return DatasetSpec(
            name=self.name or "draft",
            account=self.value("account"),
            report=report.slug,
            params=controls.params_from_form(report, self.values),
            date_selection=selection,
            timezone=None if timezone == self.account_zone else timezone,
            description=self.value("description").strip(),
            owner=self.value("owner").strip() or None,
            display_name=self.value("display_name").strip(),
            **chosen,
        )

    def save(self) -> str | None:
        """Check every pane, then create (or change) the dataset and set its schedule.

        Returns:
            None when saved, else the first pane with errors (see :attr:`errors`).
        """
        for step in STEPS:
            if not self.check(step):
                return step
        spec = self.spec()
        plan = controls.schedule_from_form(self.values, self.values["days"])
        changes = schedule_changes(plan, **controls.retry_from_form(self.values))
        try:
            if self.dataset is None:
                create_dataset(self.store, spec, self.now)
            else:
                edits = {k: getattr(spec, k) for k in SPEC_FIELDS}
                edit_dataset(self.store, self.dataset.name, edits, self.now)
        except ConflictError as exc:
            self.errors = {"name": str(exc)}
            return "name"
        except NotFoundError as exc:
            self.errors = {"account": str(exc)}
            return "credentials"
        except InvalidWindowError as exc:
            self.errors = {"details": str(exc)}
            return "details"
        set_schedule(self.store, spec.name, changes, self.now)
        return None

    @property
    def name(self) -> str:
        return self.dataset.name if self.dataset else self.value("name").strip()


def _needs_value(field: CredentialField) -> bool:
    return field.required and not field.default
