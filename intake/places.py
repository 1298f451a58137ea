"""The country of a place as people write it ("Kasulo, Kolwezi, DR Congo", "中国云南省红河州").

For the queue's country filter and the published statistics. A known name or alias anywhere
in the text wins, then a Chinese province or autonomous region; otherwise the last
comma-separated part is taken as written.
"""

from __future__ import annotations

import re

from intake.text import fold

# Countries of the mining and mineral supply chains the mechanism hears most from, with the
# names people use for them. Keys are the names shown to the secretariat.
COUNTRIES: dict[str, tuple[str, ...]] = {
    "DR Congo": ("dr congo", "drc", "rdc", "democratic republic of the congo",
                 "république démocratique du congo", "congo-kinshasa", "刚果（金）", "刚果(金)",
                 "刚果民主共和国", "刚果金"),
    "China": ("china", "prc", "中国", "中华人民共和国", "chine"),
    "Indonesia": ("indonesia", "indonésie", "印度尼西亚", "印尼"),
    "Zambia": ("zambia", "zambie", "赞比亚"),
    "Zimbabwe": ("zimbabwe", "津巴布韦"),
    "Chile": ("chile", "chili", "智利"),
    "Peru": ("peru", "perú", "pérou", "秘鲁"),
    "Bolivia": ("bolivia", "bolivie", "玻利维亚"),
    "Argentina": ("argentina", "argentine", "阿根廷"),
    "Brazil": ("brazil", "brasil", "brésil", "巴西"),
    "Myanmar": ("myanmar", "burma", "缅甸"),
    "Philippines": ("philippines", "菲律宾"),
    "Guinea": ("guinea", "guinée", "几内亚"),
    "Ghana": ("ghana", "加纳"),
    "Madagascar": ("madagascar", "马达加斯加"),
    "Mozambique": ("mozambique", "moçambique", "莫桑比克"),
    "Rwanda": ("rwanda", "卢旺达"),
    "Tanzania": ("tanzania", "tanzanie", "坦桑尼亚"),
    "South Africa": ("south africa", "afrique du sud", "南非"),
    "Namibia": ("namibia", "纳米比亚"),
    "Mongolia": ("mongolia", "蒙古"),
    "Laos": ("laos", "lao pdr", "老挝"),
    "Russia": ("russia", "россия", "俄罗斯"),
    "Kazakhstan": ("kazakhstan", "哈萨克斯坦"),
    "Australia": ("australia", "澳大利亚"),
    "Papua New Guinea": ("papua new guinea", "png", "巴布亚新几内亚"),
}

# A Chinese administrative address ("云南省红河州", "广西壮族自治区") is in China.
_CHINESE_ADDRESS = re.compile(r"[\u4e00-\u9fff]{2,}(省|自治区)")


def country_of(place: str | None) -> str | None:
    """The country named in a place, or its last comma-separated part, or None."""
    if not place or not place.strip():
        return None
    folded = fold(place)
    for country, names in COUNTRIES.items():
        for name in names:
            if name.isascii():
                if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", folded):
                    return country
            elif name in folded:
                return country
    if _CHINESE_ADDRESS.search(place):
        return "China"
    last = re.split(r"[,，、;；]", place)[-1].strip()
    return last[:80] or None
