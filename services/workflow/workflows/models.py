"""Define the workflow service's models (roles synced from auth, seeded workflows)."""

from django.db import models
from django.db.models import F, Q


class Role(models.Model):
    """Mirror one auth Role (TTS roles plus the HDTS Ticket Coordinator)."""

    role_id = models.PositiveIntegerField(primary_key=True, help_text="The auth Role id.")
    name = models.CharField(max_length=100, unique=True)
    system = models.CharField(max_length=20)
    synced_at = models.DateTimeField(
        null=True, blank=True, help_text="occurred_at of the last applied sync event."
    )

    class Meta:
        ordering = ("role_id",)

    def __str__(self) -> str:
        return f"{self.name} ({self.system})"


class RoleUser(models.Model):
    """Mirror one auth user-role link of a synced role."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="role_users")
    user_id = models.PositiveIntegerField(help_text="The auth User id.")
    user_full_name = models.CharField(max_length=300, blank=True)
    is_active = models.BooleanField(default=True)
    settings = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField(
        null=True, blank=True, help_text="occurred_at of the last applied sync event."
    )

    class Meta:
        ordering = ("role_id", "user_id")
        constraints = (models.UniqueConstraint(fields=("role", "user_id"), name="uniq_roleuser_role_user"),)

    def __str__(self) -> str:
        return f"{self.user_full_name or self.user_id} as {self.role_id}"


class Workflow(models.Model):
    """Describe how tickets of one category / sub-category move through steps."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        INITIALIZED = "initialized", "Initialized"

    name = models.CharField(max_length=200, unique=True)
    category = models.CharField(max_length=100)
    sub_category = models.CharField(max_length=100)
    department = models.CharField(max_length=100)
    owner_user_id = models.PositiveIntegerField(help_text="The auth User id of the owner.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    urgent_sla = models.DurationField()
    high_sla = models.DurationField()
    medium_sla = models.DurationField()
    low_sla = models.DurationField()

    class Meta:
        ordering = ("name",)
        constraints = (
            models.UniqueConstraint(
                fields=("owner_user_id", "category", "sub_category"),
                name="uniq_workflow_owner_category",
            ),
            models.CheckConstraint(
                condition=Q(urgent_sla__lt=F("high_sla"))
                & Q(high_sla__lt=F("medium_sla"))
                & Q(medium_sla__lt=F("low_sla")),
                name="workflow_sla_ordered",
            ),
        )

    def __str__(self) -> str:
        return self.name


class Step(models.Model):
    """Name one stage of a workflow and the role that handles it."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=100)
    role = models.ForeignKey(Role, on_delete=models.PROTECT, null=True, blank=True, related_name="steps")
    order = models.PositiveSmallIntegerField(default=1)
    is_start = models.BooleanField(default=False)
    is_end = models.BooleanField(default=False)
    instruction = models.TextField(blank=True)

    class Meta:
        ordering = ("workflow_id", "order", "name")
        constraints = (models.UniqueConstraint(fields=("workflow", "name"), name="uniq_step_workflow_name"),)

    def __str__(self) -> str:
        return f"{self.workflow_id}: {self.name}"


class Transition(models.Model):
    """Connect two steps of a workflow with a named action."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="transitions")
    from_step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="outgoing")
    to_step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="incoming")
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ("workflow_id", "from_step_id", "to_step_id")
        constraints = (
            models.UniqueConstraint(fields=("from_step", "to_step"), name="uniq_transition_from_to"),
        )

    def __str__(self) -> str:
        return f"{self.from_step_id} -> {self.to_step_id} ({self.name})"


class SeedMark(models.Model):
    """Remember the options of the last seed run (one row named "seed")."""

    name = models.CharField(max_length=20, primary_key=True, default="seed")
    options = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.options}"


class ProcessedEvent(models.Model):
    """Record a received sync event so a redelivery is a no-op."""

    event_id = models.UUIDField(primary_key=True)
    queue = models.CharField(max_length=100)
    action = models.CharField(max_length=10)
    outcome = models.CharField(max_length=20)
    detail = models.CharField(max_length=40, blank=True, help_text="What applying did.")
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("processed_at", "event_id")

    def __str__(self) -> str:
        return f"{self.queue} {self.action} {self.event_id}: {self.outcome}"


class DeferredEvent(models.Model):
    """Park a user-role event until the role it needs arrives."""

    event_id = models.UUIDField(unique=True)
    queue = models.CharField(max_length=100)
    waiting_for = models.PositiveIntegerField(help_text="The role_id this event needs.")
    occurred_at = models.DateTimeField()
    envelope = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("occurred_at", "id")
        indexes = (models.Index(fields=("waiting_for",), name="deferred_waiting_for_idx"),)

    def __str__(self) -> str:
        return f"{self.event_id} waiting for role {self.waiting_for}"
