"""Complete applications as a person types them, line by line, for tests and benchmarks."""

from __future__ import annotations

ENGLISH_FILING = [
    "Hello",
    "1",                                    # language: English
    "1",                                    # for myself
    "1",                                    # an individual
    "Jane Mwamba",
    "1",                                    # one applicant
    "Kasulo, Kolwezi, Lualaba, DR Congo",
    "+243 970 000 001",
    "Kolwezi Mining SARL",
    "Route de Likasi, Kolwezi, Lualaba",
    "skip",                                 # respondent contact
    "Kasulo, Kolwezi, DR Congo",
    "1",                                    # cobalt
    "1",                                    # mining
    "4",                                    # operation
    "1",                                    # environmental
    "Since March 2026 the river next to the mine is orange.",
    "Children who bathe in it have rashes.",
    "done",
    "Stop the discharge and clean the river.",
    "done",
    "The discharge pipe of the mine ends in the river.",
    "done",
    "skip",                                 # standards
    "skip",                                 # prior contact
    "Photos of the river; twelve neighbours saw the pipe.",
    "done",
    "2",                                    # no confidentiality request
    "1",                                    # write in this language
    "2",                                    # no interpreter
    "1",                                    # the summary is correct
    "1",                                    # accept the declaration
]

CHINESE_FILING = [
    "你好",
    "2",                                    # 中文
    "1",
    "2",                                    # 社区
    "王家村村民委员会",
    "2",
    "中国云南省红河州王家村",
    "13800000000",
    "某某锡业有限公司",
    "云南省个旧市",
    "跳过",
    "云南省红河州",
    "5",                                    # 锡
    "2",                                    # 冶炼
    "4",
    "1",
    "冶炼厂的废水流进了村里的水田。",
    "完成",
    "停止排放并赔偿损失。",
    "完成",
    "废水来自冶炼厂的排污口。",
    "完成",
    "跳过",
    "跳过",
    "有照片和村民证言。",
    "完成",
    "2",
    "1",
    "2",
    "1",
    "1",
]
