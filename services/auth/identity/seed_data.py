"""Hold the fixed seed data and the name pools for generated employees."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Department, Status

IT, ASSET, BUDGET = Department.IT.value, Department.ASSET.value, Department.BUDGET.value
APPROVED, PENDING, REJECTED = Status.APPROVED.value, Status.PENDING.value, Status.REJECTED.value

SYSTEMS: tuple[tuple[str, str], ...] = (
    ("hdts", "Help Desk and Ticketing System"),
    ("tts", "Ticket Tracking System"),
    ("ams", "Asset Management System"),
    ("bms", "Budget Management System"),
)
ADMIN_ROLE = "Admin"
ADMIN_DEPARTMENTS: dict[str, str] = {"hdts": IT, "tts": IT, "ams": ASSET, "bms": BUDGET}

ROLE_DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("hdts", ADMIN_ROLE): "Administers the Help Desk and Ticketing System.",
    ("tts", ADMIN_ROLE): "Administers the Ticket Tracking System and triages tickets.",
    ("ams", ADMIN_ROLE): "Administers the Asset Management System.",
    ("bms", ADMIN_ROLE): "Administers the Budget Management System.",
    ("tts", "Asset Manager"): "Resolves asset check-in, check-out and IT support tickets.",
    ("tts", "Budget Manager"): "Resolves budget proposal tickets.",
    ("hdts", "Employee"): "Submits and follows help desk tickets.",
    ("hdts", "Ticket Coordinator"): "Reviews, prioritizes and routes help desk tickets.",
}


@dataclass(frozen=True)
class SeedUser:
    """Describe one fixed user and the role it holds."""

    email: str
    username: str
    first_name: str
    last_name: str
    department: str
    role: str
    company_id: str | None = None
    is_staff: bool = False


def admin_user(slug: str) -> SeedUser:
    """Describe the admin user of a system (admin<slug>@example.com)."""
    return SeedUser(
        email=f"admin{slug}@example.com",
        username=f"admin{slug}",
        first_name=slug.upper(),
        last_name="Admin",
        department=ADMIN_DEPARTMENTS[slug],
        role=ADMIN_ROLE,
        is_staff=True,
    )


TTS_ROLES: tuple[str, ...] = ("Asset Manager", "Budget Manager")
TTS_USERS: tuple[SeedUser, ...] = (
    SeedUser("maria.santos@example.com", "maria.santos", "Maria", "Santos", IT, ADMIN_ROLE, is_staff=True),
    SeedUser("jonas.reyes@example.com", "jonas.reyes", "Jonas", "Reyes", IT, ADMIN_ROLE, is_staff=True),
    SeedUser("paolo.cruz@example.com", "paolo.cruz", "Paolo", "Cruz", ASSET, "Asset Manager"),
    SeedUser("liza.mendoza@example.com", "liza.mendoza", "Liza", "Mendoza", BUDGET, "Budget Manager"),
)

COORDINATOR = "Ticket Coordinator"
HDTS_ROLES: tuple[str, ...] = ("Employee", COORDINATOR)
HDTS_USERS: tuple[SeedUser, ...] = (
    SeedUser("carlo.garcia@example.com", "carlo.garcia", "Carlo", "Garcia", IT, COORDINATOR, "MA0101"),
    SeedUser("ana.ramirez@example.com", "ana.ramirez", "Ana", "Ramirez", ASSET, COORDINATOR, "MA0102"),
    SeedUser("miguel.torres@example.com", "miguel.torres", "Miguel", "Torres", IT, COORDINATOR, "MA0103"),
    SeedUser("bea.ramos@example.com", "bea.ramos", "Bea", "Ramos", ASSET, COORDINATOR, "MA0104"),
    SeedUser(
        "rosa.delacruz@example.com", "rosa.delacruz", "Rosa", "Dela Cruz", BUDGET, ADMIN_ROLE, "MA0105", True
    ),
)


@dataclass(frozen=True)
class SeedEmployee:
    """Describe one HDTS employee."""

    company_id: str
    email: str
    username: str
    first_name: str
    last_name: str
    department: str
    status: str


FIXED_EMPLOYEES: tuple[SeedEmployee, ...] = (
    SeedEmployee("MA0001", "juan.dela.cruz@example.com", "juan.dela.cruz", "Juan", "Dela Cruz", IT, APPROVED),
    SeedEmployee("MA0002", "angela.reyes@example.com", "angela.reyes", "Angela", "Reyes", ASSET, APPROVED),
    SeedEmployee("MA0003", "mark.uy@example.com", "mark.uy", "Mark", "Uy", BUDGET, APPROVED),
    SeedEmployee("MA0004", "joy.fernandez@example.com", "joy.fernandez", "Joy", "Fernandez", IT, APPROVED),
    SeedEmployee("MA0005", "ramon.aquino@example.com", "ramon.aquino", "Ramon", "Aquino", ASSET, APPROVED),
    SeedEmployee("MA0006", "grace.lim@example.com", "grace.lim", "Grace", "Lim", BUDGET, APPROVED),
    SeedEmployee("MA0007", "noel.castillo@example.com", "noel.castillo", "Noel", "Castillo", IT, PENDING),
    SeedEmployee("MA0008", "irene.navarro@example.com", "irene.navarro", "Irene", "Navarro", ASSET, REJECTED),
)
MAX_EMPLOYEES = 9999  # company ids MA0001..MA9999

# fmt: off
FIRST_NAMES: tuple[str, ...] = (
    "Adrian", "Bianca", "Carmela", "Daniel", "Elena", "Francis", "Gabriel", "Hannah", "Isabel",
    "Joshua", "Katrina", "Leo", "Marco", "Nina", "Oscar", "Patricia", "Quentin", "Rhea", "Samuel",
    "Tessa", "Ulysses", "Vanessa", "Warren", "Ximena", "Yuri", "Zara",
)
LAST_NAMES: tuple[str, ...] = (
    "Abad", "Bernardo", "Cabrera", "Domingo", "Estrada", "Flores", "Gonzales", "Hernandez", "Ilagan",
    "Jimenez", "Lopez", "Manalo", "Nepomuceno", "Ocampo", "Pascual", "Quizon", "Rivera", "Salazar",
    "Tolentino", "Umali", "Valdez", "Yap", "Zamora",
)
# fmt: on
DEPARTMENTS: tuple[str, ...] = (IT, ASSET, BUDGET)
STATUS_WEIGHTS: tuple[tuple[str, int], ...] = ((APPROVED, 80), (PENDING, 15), (REJECTED, 5))
