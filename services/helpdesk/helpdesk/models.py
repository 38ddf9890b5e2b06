"""Define the helpdesk data model: employees, tickets, mirrors and bookkeeping."""

from django.db import models


class Department(models.TextChoices):
    """List the departments shared by every service."""

    IT = "IT Department", "IT Department"
    ASSET = "Asset Department", "Asset Department"
    BUDGET = "Budget Department", "Budget Department"


class Employee(models.Model):
    """Store a local login identity of the help desk."""

    class Role(models.TextChoices):
        """List the help desk roles."""

        EMPLOYEE = "Employee", "Employee"
        TICKET_COORDINATOR = "Ticket Coordinator", "Ticket Coordinator"
        SYSTEM_ADMIN = "System Admin", "System Admin"

    class Status(models.TextChoices):
        """List the account approval states."""

        PENDING = "Pending", "Pending"
        APPROVED = "Approved", "Approved"
        DENIED = "Denied", "Denied"

    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    email = models.EmailField(max_length=254, unique=True)
    company_id = models.CharField(max_length=6, unique=True)
    department = models.CharField(max_length=50, choices=Department.choices)
    role = models.CharField(max_length=30, choices=Role.choices, default=Role.EMPLOYEE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    password = models.CharField(max_length=128)

    class Meta:
        ordering = ["company_id"]

    def __str__(self) -> str:
        """Return the company id and full name."""
        return f"{self.company_id} {self.first_name} {self.last_name}"


class Ticket(models.Model):
    """Store a help desk ticket submitted by an employee."""

    class Category(models.TextChoices):
        """List the ticket categories."""

        IT_SUPPORT = "IT Support", "IT Support"
        ASSET_CHECK_IN = "Asset Check In", "Asset Check In"
        ASSET_CHECK_OUT = "Asset Check Out", "Asset Check Out"
        NEW_BUDGET_PROPOSAL = "New Budget Proposal", "New Budget Proposal"
        OTHERS = "Others", "Others"

    class Priority(models.TextChoices):
        """List the ticket priorities."""

        CRITICAL = "Critical", "Critical"
        HIGH = "High", "High"
        MEDIUM = "Medium", "Medium"
        LOW = "Low", "Low"

    class Status(models.TextChoices):
        """List the ticket states."""

        NEW = "New", "New"
        OPEN = "Open", "Open"
        IN_PROGRESS = "In Progress", "In Progress"
        ON_HOLD = "On Hold", "On Hold"
        PENDING = "Pending", "Pending"
        RESOLVED = "Resolved", "Resolved"
        REJECTED = "Rejected", "Rejected"
        WITHDRAWN = "Withdrawn", "Withdrawn"
        CLOSED = "Closed", "Closed"

    ticket_number = models.CharField(max_length=20, unique=True)
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="tickets")
    subject = models.CharField(max_length=255)
    category = models.CharField(max_length=30, choices=Category.choices)
    sub_category = models.CharField(max_length=100)
    priority = models.CharField(max_length=10, choices=Priority.choices, null=True, blank=True)
    department = models.CharField(max_length=50, choices=Department.choices, null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    requested_budget = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    submitted_at = models.DateTimeField()

    class Meta:
        ordering = ["ticket_number"]

    def __str__(self) -> str:
        """Return the ticket number and subject."""
        return f"{self.ticket_number} {self.subject}"


class HDTSUser(models.Model):
    """Mirror an auth user holding an HDTS role (fed by ``hdts.user.sync``)."""

    hdts_user_id = models.PositiveBigIntegerField(unique=True)
    email = models.EmailField(max_length=254, unique=True)
    username = models.CharField(max_length=150, blank=True, default="")
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    company_id = models.CharField(max_length=6, null=True, blank=True)
    department = models.CharField(max_length=50, blank=True, default="")
    role = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=20, blank=True, default="")
    synced_at = models.DateTimeField(help_text="Time of the last event applied to this row.")

    class Meta:
        ordering = ["hdts_user_id"]
        verbose_name = "HDTS user"

    def __str__(self) -> str:
        """Return the auth user id and email."""
        return f"{self.hdts_user_id} {self.email}"


class ExternalEmployee(models.Model):
    """Mirror an auth Employee (fed by ``hdts.employee.sync``)."""

    external_employee_id = models.PositiveBigIntegerField(unique=True)
    email = models.EmailField(max_length=254, unique=True)
    username = models.CharField(max_length=150, blank=True, default="")
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    company_id = models.CharField(max_length=6, null=True, blank=True)
    department = models.CharField(max_length=50, blank=True, default="")
    status = models.CharField(max_length=20, blank=True, default="")
    synced_at = models.DateTimeField(help_text="Time of the last event applied to this row.")

    class Meta:
        ordering = ["external_employee_id"]

    def __str__(self) -> str:
        """Return the auth employee id and email."""
        return f"{self.external_employee_id} {self.email}"


class SeedMark(models.Model):
    """Remember the options of the last seed run (one row named ``seed``)."""

    name = models.CharField(max_length=50, primary_key=True, default="seed")
    options = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        """Return the mark name and options."""
        return f"{self.name} {self.options}"


class ProcessedEvent(models.Model):
    """Record a sync event already handled, so a redelivery changes nothing."""

    event_id = models.UUIDField(primary_key=True)
    queue = models.CharField(max_length=100)
    action = models.CharField(max_length=20)
    outcome = models.CharField(max_length=20)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["processed_at", "event_id"]

    def __str__(self) -> str:
        """Return the event id, queue and outcome."""
        return f"{self.event_id} {self.queue} {self.outcome}"
