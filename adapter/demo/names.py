"""Vietnamese personal names for synthetic patients: family + middle + given, in UTF-8 with diacritics.

Family names are weighted by their approximate share of the population (Nguyễn about 38 %). The names
exist only inside the hospital's messages (HL7 PID-5, later BHYT XML HO_TEN): never in the roster or in
anything the adapter sends out.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

FAMILY: tuple[tuple[str, int], ...] = (
    ("Nguyễn", 380),
    ("Trần", 110),
    ("Lê", 95),
    ("Phạm", 70),
    ("Hoàng", 30),
    ("Huỳnh", 22),
    ("Phan", 45),
    ("Vũ", 20),
    ("Võ", 19),
    ("Đặng", 21),
    ("Bùi", 20),
    ("Đỗ", 14),
    ("Hồ", 13),
    ("Ngô", 13),
    ("Dương", 10),
    ("Lý", 5),
    ("Trương", 8),
    ("Đinh", 6),
    ("Lâm", 5),
    ("Mai", 4),
)
MIDDLE_MALE = ("Văn", "Văn", "Văn", "Hữu", "Đức", "Minh", "Quốc", "Công", "Thành", "Xuân", "Ngọc", "Anh")
MIDDLE_FEMALE = ("Thị", "Thị", "Thị", "Thị", "Ngọc", "Thu", "Kim", "Thanh", "Mỹ", "Bích", "Hoài", "Phương")
GIVEN_MALE = (
    "Đức", "Hùng", "Dũng", "Tuấn", "Minh", "Hải", "Long", "Nam", "Phúc", "Quang", "Sơn", "Thắng", "Trung",
    "Việt", "Khoa", "Bình", "Cường", "Hòa", "Lâm", "Phong", "Tài", "Thịnh", "Vinh", "An", "Bảo", "Hiếu",
    "Khánh", "Lộc", "Nghĩa", "Tâm", "Toàn", "Trí", "Tùng", "Huy", "Đạt", "Kiên",
)  # fmt: skip
GIVEN_FEMALE = (
    "Hồng", "Lan", "Hương", "Mai", "Linh", "Hà", "Ngọc", "Thảo", "Trang", "Yến", "Nhung", "Hạnh", "Loan",
    "Phượng", "Thủy", "Oanh", "Dung", "Vân", "Hoa", "Liên", "Tuyết", "Hằng", "Nga", "Ánh", "Diệp", "Huệ",
    "Quyên", "Tâm", "Xuân", "Cúc", "Điệp", "Giang", "Lệ", "My", "Nhàn", "Sương",
)  # fmt: skip

_FAMILY_NAMES = tuple(name for name, _ in FAMILY)
_FAMILY_WEIGHTS = tuple(weight for _, weight in FAMILY)


@dataclass(frozen=True)
class PersonName:
    family: str
    middle: str
    given: str

    @property
    def full(self) -> str:
        """Written order in Vietnamese: family, middle, given ("Nguyễn Thị Hồng")."""
        return " ".join(p for p in (self.family, self.middle, self.given) if p)

    def folded(self) -> PersonName:
        """The same name without diacritics, as older systems store it ("Nguyen Thi Hong")."""
        return PersonName(fold(self.family), fold(self.middle), fold(self.given))


def fold(text: str) -> str:
    """Strip Vietnamese diacritics (đ -> d, ễ -> e)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def draw_name(rng: random.Random, sex: str) -> PersonName:
    """A plausible name for sex 'M' or 'F'; one in eight has a second middle name."""
    family = rng.choices(_FAMILY_NAMES, _FAMILY_WEIGHTS)[0]
    male = sex == "M"
    middle = rng.choice(MIDDLE_MALE if male else MIDDLE_FEMALE)
    if rng.random() < 0.125:
        extra = rng.choice(GIVEN_MALE if male else GIVEN_FEMALE)
        middle = f"{middle} {extra}"
    given = rng.choice(GIVEN_MALE if male else GIVEN_FEMALE)
    return PersonName(family, middle, given)
