"""The sample bills of policies/samples/, settled against the sample tables of policies/.

Every expected figure below was worked out by hand from domain.md (sections 3, 5 and 6) and the
tables, before running the engine; the arithmetic is in the comments, in fen. round(x * r) means
the half-up rule of domain.md section 2. All samples are settled in one batch, so the year-to-date
accounts run across the bills of one person (and, for Wei county, one household) in discharge
order, with both the plain reference and the kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.batch import BatchResult, reference_batch, settle_batch
from engine.bill import Bill, parse_bill
from engine.policy.load import load_policies
from engine.result import Settlement

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
SAMPLES = POLICIES / "samples"

# bill id -> expected figures.
#   buckets: (total, in_scope, pre_selfpay, over_limit, out_of_catalogue)
#   pay: layer id -> pay (layers not listed pay 0)
#   why: layer id -> reason it did not apply (layers not listed applied)
#   cap: layer id -> the limit that bound
EXPECTED: dict[str, dict] = {
    # ---------------------------------------------------------------- Longzhou 2019 (451423)
    # lz-p1, registered poor, county hospital, 1st admission of 2019.
    # Items: bed 11 days x 3500, cap 2000/day -> cap_total 22000, over 16500, in 22000;
    #   surgery A 600000; ceftriaxone B 20 x 4550 = 91000, pre round(91000*10%) = 9100, in 81900;
    #   suture B 36000 at 20% -> pre 7200, in 28800; thymalfasin C 90000; CT A 50000.
    # in_scope = 22000+600000+81900+28800+50000 = 782700; pre = 16300; over 16500; ooc 90000.
    # basic (poor, county: no deductible, 80%): round(782700*0.8) = 626160; left 156540
    # critical (poor: 350000 a year): deductible min(156540, 350000) = 156540, eligible 0, pay 0
    # second pass 90%: round(156540*0.9) = 140886; left 15654
    # assistance (registered poor 70%): round(15654*0.7) = round(10957.8) = 10958; left 4696
    # backstop (in_scope+pre): base 4696+16300 = 20996; 10% of 799000 = 79900 > base -> pay 0
    # net = 4696 + 16300 + 16500 + 90000 = 127496 = 905500 - 778004
    # China Life relief (household lz-h1, filed-poor line 500000): 0 -> 127496, under the line
    "longzhou-1": {
        "buckets": (905500, 782700, 16300, 16500, 90000),
        "pay": {"basic": 626160, "second_pass": 140886, "assistance": 10958},
        "alerts": 0,
        "window_pay": 127496,
        "net_selfpay": 127496,
    },
    # lz-p1 again, city hospital (2nd admission). Stent B 2800000 priced above its 2000000 limit:
    #   over 800000, rest 2000000 at 30% -> pre 600000, in 1400000; PCI A 1500000;
    #   bed 10 x 3000, cap 2000 -> over 10000, in 20000; clopidogrel B 45000 -> pre 4500,
    #   in 40500; contrast C 120000.
    # in_scope = 1400000+1500000+20000+40500 = 2960500; pre 604500; over 810000; ooc 120000.
    # basic (poor, city 65%): round(2960500*0.65) = 1924325; left 1036175
    # critical: deductible left 350000-156540 = 193460; eligible 1036175-193460 = 842715;
    #   year tiers from 0 (the first bill had no eligible amount): 842715 < 4000000, city 70%:
    #   round(842715*0.7) = round(589900.5) = 589901; left 446274
    # second pass: round(446274*0.9) = round(401646.6) = 401647; left 44627
    # assistance 70%: round(44627*0.7) = round(31238.9) = 31239 (paid this year 10958+31239,
    #   under the 1000000 cap); left 13388
    # backstop: base 13388+604500 = 617888; covered total 2960500+604500 = 3565000,
    #   10% = 356500 -> pay 617888-356500 = 261388 (max_share binds)
    # net = 356500 + 810000 + 120000 = 1286500;
    # check: 1924325+589901+401647+31239+261388 = 3208500 = 4495000-1286500
    # China Life relief (household lz-h1): 127496 -> 127496+1286500 = 1413996; above the
    #   500000 line by 913996, all in the first segment (up to 1000000) at 50% -> 456998
    "longzhou-2": {
        "buckets": (4495000, 2960500, 604500, 810000, 120000),
        "pay": {
            "basic": 1924325,
            "critical": 589901,
            "second_pass": 401647,
            "assistance": 31239,
            "backstop": 261388,
        },
        "cap": {"backstop": "max_share"},
        "relief": {"chinalife_relief": 456998},
        "alerts": 1,
        "window_pay": 1286500,
        "net_selfpay": 1286500,
    },
    # lz-g1, general resident, county, 1st admission: A 300000; B 100000 -> pre 10000, in 90000;
    #   C 20000. in_scope 390000.
    # basic: first-admission deductible 30000, 75%: (390000-30000)*0.75 = 270000; left 120000
    # critical (general 700000 a year): deductible 120000, eligible 0
    # second pass, assistance, backstop: not registered poor / no assistance tag
    # net = 120000 + 10000 + 20000 = 150000
    "longzhou-3": {
        "buckets": (420000, 390000, 10000, 0, 20000),
        "pay": {"basic": 270000},
        "why": {
            "second_pass": "tags_any",
            "assistance": "tags_any",
            "backstop": "tags_any",
            "chinalife_relief": "tags_any",
        },
        "window_pay": 150000,
        "net_selfpay": 150000,
    },
    # lz-g1 again, regional (自治区三级) hospital, 2nd admission: A 10000000; B 2000000 ->
    #   pre 200000, in 1800000; bed 20 x 6000 cap 2000 -> over 80000, in 40000; C 500000.
    # in_scope = 10000000+1800000+40000 = 11840000.
    # basic: later-admission deductible at region 30000 (not 60000), 55%:
    #   (11840000-30000)*0.55 = 6495500; left 5344500
    # critical: deductible left 700000-120000 = 580000; eligible 4764500;
    #   R = 4000000*0.6 + 764500*0.7 = 2400000 + 535150 = 2935150; left 2409350
    # net = 2409350 + 200000 + 80000 + 500000 = 3189350 = 12620000 - (6495500+2935150)
    "longzhou-4": {
        "buckets": (12620000, 11840000, 200000, 80000, 500000),
        "pay": {"basic": 6495500, "critical": 2935150},
        "why": {
            "second_pass": "tags_any",
            "assistance": "tags_any",
            "backstop": "tags_any",
            "chinalife_relief": "tags_any",
        },
        "window_pay": 3189350,
        "net_selfpay": 3189350,
    },
    # lz-t1, 特困 + registered poor, township: A 250000; B 50000 -> pre 5000, in 45000.
    # basic (poor township 95%): round(295000*0.95) = 280250; left 14750
    # critical: deductible 14750, eligible 0
    # second pass: round(14750*0.9) = 13275; left 1475
    # assistance (特困 variant first, 90%): round(1475*0.9) = round(1327.5) = 1328; left 147
    # backstop: base 147+5000 = 5147 < 10% of 300000 -> pay 0
    # net = 147 + 5000 = 5147; China Life relief: household lz-h3 at 5147, under 500000
    "longzhou-5": {
        "buckets": (300000, 295000, 5000, 0, 0),
        "pay": {"basic": 280250, "second_pass": 13275, "assistance": 1328},
        "variant": {"assistance": 0},
        "window_pay": 5147,
        "net_selfpay": 5147,
    },
    # lz-p2, registered poor (低保 tag expired 2018-12-31), out of province: A 2000000; C 300000.
    # basic (poor out of province: deductible 100000, 55%): (2000000-100000)*0.55 = 1045000;
    #   left 955000
    # critical (poor, 60% outside Guangxi): deductible 350000, eligible 605000 -> 363000;
    #   left 592000
    # second pass: 592000*0.9 = 532800; left 59200
    # assistance (registered poor 70%): 41440; left 17760
    # backstop: not paid outside Guangxi (eligibility levels) -> reason 'level'
    # net = 17760 + 300000 = 317760; China Life relief: household lz-h4 at 317760 < 500000
    "longzhou-6": {
        "buckets": (2300000, 2000000, 0, 0, 300000),
        "pay": {
            "basic": 1045000,
            "critical": 363000,
            "second_pass": 532800,
            "assistance": 41440,
        },
        "variant": {"assistance": 1},
        "why": {"backstop": "level"},
        "alerts": 0,
        "window_pay": 317760,
        "net_selfpay": 317760,
    },
    # lz-l1, non-poor low-income household lz-h5 (tag low_income only), county, 1st admission:
    #   A 9000000; C 1000000. in_scope 9000000.
    # basic (general county: first-admission deductible 30000, 75%): 8970000*0.75 = 6727500;
    #   left 2272500
    # critical (general 700000 a year; 60% to 4000000 above it): eligible 1572500 -> 943500;
    #   left 1329000
    # second pass, assistance, backstop: not registered poor / no assistance tag
    # net = 1329000 + 1000000 = 2329000
    # China Life relief (low-income line 2000000): 0 -> 2329000; 329000 above the line, first
    #   segment (up to 2000000) at 50% -> 164500; one alert
    "longzhou-7": {
        "buckets": (10000000, 9000000, 0, 0, 1000000),
        "pay": {"basic": 6727500, "critical": 943500},
        "why": {"second_pass": "tags_any", "assistance": "tags_any", "backstop": "tags_any"},
        "variant": {"chinalife_relief": 1},
        "relief": {"chinalife_relief": 164500},
        "alerts": 1,
        "window_pay": 2329000,
        "net_selfpay": 2329000,
    },
    # ------------------------------------------------------------------ Hong'an 2018 (421122)
    # ha-p1, registered poor aged 44, county: A 4000000; B 1000000 -> pre 100000, in 900000;
    #   C 800000; bed 18 x 5000 cap 3000 -> cap_total 54000, over 36000, in 54000.
    # in_scope = 4000000+900000+54000 = 4954000.
    # basic (poor county: no deductible, 80%): 4954000*0.8 = 3963200; left 990800
    # critical (poor: 500000 a year; 60% up to 2500000 above it): eligible 490800 -> 294480;
    #   left 696320
    # assistance 70%: 696320*0.7 = 487424; left 208896
    # PICC backstop, in-catalogue only (in_scope + pre): base 208896+100000 = 308896;
    #   10% of 4954000+100000 = 505400; ceiling 500000-0 -> allowed 308896, pay 0
    #   (selfpay_cum 308896)
    # window pay = 308896 + 36000 + 800000 = 1144896
    # Backbone (after discharge, every bucket): base 1144896, yearly deductible 190000,
    #   round(954896*0.6) = round(572937.6) = 572938
    # net = 1144896 - 572938 = 571958
    "hongan-1": {
        "buckets": (5890000, 4954000, 100000, 36000, 800000),
        "pay": {
            "basic": 3963200,
            "critical": 294480,
            "assistance": 487424,
            "backbone": 572938,
        },
        "window_pay": 1144896,
        "net_selfpay": 571958,
    },
    # ha-p1 again, township: A 200000; C 30000.
    # basic (poor township 90%): 180000; left 20000
    # critical: deductible used up; eligible 20000; year tiers 490800 -> 510800, all at 60%:
    #   round(510800*0.6) - round(490800*0.6) = 306480 - 294480 = 12000; left 8000
    # assistance 70%: 5600 (paid 487424+5600 = 493024 < 1000000); left 2400
    # PICC (in_scope + pre): base 2400; 10% of 200000 = 20000, ceiling left 500000-308896
    #   -> allowed 2400, pay 0 (selfpay_cum 311296)
    # window pay = 2400 + 30000 = 32400
    # Backbone: yearly deductible used up; 60% of 32400 = 19440; net = 32400 - 19440 = 12960
    "hongan-2": {
        "buckets": (230000, 200000, 0, 0, 30000),
        "pay": {
            "basic": 180000,
            "critical": 12000,
            "assistance": 5600,
            "backbone": 19440,
        },
        "window_pay": 32400,
        "net_selfpay": 12960,
    },
    # ha-g1, general resident, city: A 15000000; B 3000000 -> pre 300000, in 2700000; C 1000000.
    # in_scope 17700000.
    # basic (general city: deductible 80000, 65%): 17620000*0.65 = 11453000; left 6247000
    # critical (general: 1200000 a year; 55% to 1800000, 65% to 8800000, 75% above):
    #   eligible 5047000 -> 1800000*0.55 + 3247000*0.65 = 990000 + 2110550 = 3100550;
    #   left 3146450
    # no poverty layers; net = 3146450 + 300000 + 1000000 = 4446450
    "hongan-3": {
        "buckets": (19000000, 17700000, 300000, 0, 1000000),
        "pay": {"basic": 11453000, "critical": 3100550},
        "why": {
            "assistance": "tags_any",
            "picc_supplementary": "tags_any",
            "backbone": "tags_any",
        },
        "window_pay": 4446450,
        "net_selfpay": 4446450,
    },
    # ha-p2, registered poor aged 65, provincial hospital: A 2000000; C 600000.
    # basic (poor province: deductible 50000, 70%): 1950000*0.7 = 1365000; left 635000
    # critical: deductible 500000, eligible 135000*0.6 = 81000; left 554000
    # assistance 70%: 387800; left 166200
    # PICC (in_scope only here): base 166200; 10% of 2000000 = 200000 -> allowed 166200, pay 0
    # Backbone: aged 65 > 60 -> does not apply; net = 166200 + 600000 = 766200
    "hongan-4": {
        "buckets": (2600000, 2000000, 0, 0, 600000),
        "pay": {
            "basic": 1365000,
            "critical": 81000,
            "assistance": 387800,
        },
        "why": {"backbone": "age_max"},
        "window_pay": 766200,
        "net_selfpay": 766200,
    },
    # ha-p3, registered poor aged 46, Huanggang city hospital, lung cancer (the seed's
    #   16,000-yuan Backbone beneficiary, in scale): A 12000000; B 2000000 -> pre 200000,
    #   in 1800000; C (targeted drug, out of catalogue) 2400000. in_scope 13800000.
    # basic (poor city: deductible 40000, 70%): 13760000*0.7 = 9632000; left 4168000
    # critical (poor: 500000 a year): eligible 3668000 -> 2500000*0.6 + 1168000*0.7
    #   = 1500000 + 817600 = 2317600; left 1850400
    # assistance 70%: 1295280 > annual cap 1000000 -> 1000000 (annual_cap); left 850400
    # PICC (in_scope + pre): base 850400+200000 = 1050400; 10% of 14000000 = 1400000;
    #   ceiling 500000 -> allowed 500000 (annual_ceiling), pay 550400; in_scope left 300000
    # window pay = 300000 + 200000 + 2400000 = 2900000
    # Backbone: base 2900000, deductible 190000, 60% of 2710000 = 1626000 (16,260 yuan)
    # net = 2900000 - 1626000 = 1274000;
    # check: 9632000+2317600+1000000+550400+1626000 = 15126000 = 16400000-1274000
    "hongan-5": {
        "buckets": (16400000, 13800000, 200000, 0, 2400000),
        "pay": {
            "basic": 9632000,
            "critical": 2317600,
            "assistance": 1000000,
            "picc_supplementary": 550400,
            "backbone": 1626000,
        },
        "cap": {"assistance": "annual_cap", "picc_supplementary": "annual_ceiling"},
        "window_pay": 2900000,
        "net_selfpay": 1274000,
    },
    # ------------------------------------------------------------------- Xishui 2017 (520330)
    # xs-p1, registered poor aged 50, provincial hospital: A 5000000; B 3000000 -> pre 300000,
    #   in 2700000; C 1500000. in_scope 7700000.
    # basic (poor province: deductible 60000, 65%): 7640000*0.65 = 4966000; left 2734000
    # critical (poor: 300000 a year; 60% to 1200000, 65% to 2200000, 70% to 3200000):
    #   eligible 2434000 -> 720000 + 650000 + 234000*0.7 = 720000+650000+163800 = 1533800;
    #   left 1200200
    # assistance 70%: 1200200*0.7 = 840140; left 360060
    # window pay = 360060 + 300000 + 1500000 = 2160060
    # Backbone (after discharge, every bucket): base 2160060, deductible 300000 a year,
    #   40% of 1860060 = 744024 (under the 1000000 cap)
    # net = 2160060 - 744024 = 1416036
    "xishui-1": {
        "buckets": (9500000, 7700000, 300000, 0, 1500000),
        "pay": {
            "basic": 4966000,
            "critical": 1533800,
            "assistance": 840140,
            "backbone": 744024,
        },
        "window_pay": 2160060,
        "net_selfpay": 1416036,
    },
    # xs-p1 again, county: A 1500000; B 500000 -> pre 50000, in 450000; C 800000.
    # in_scope 1950000.
    # basic (poor county: deductible 20000, 85%): 1930000*0.85 = 1640500; left 309500
    # critical: deductible used up; year tiers 2434000 -> 2743500, all in the 70% segment:
    #   309500*0.7 = 216650; left 92850
    # assistance 70%: round(92850*0.7) = 64995 (paid 905135 < 1000000); left 27855
    # window pay = 27855 + 50000 + 800000 = 877855
    # Backbone: 40% of 877855 = 351142 but only 1000000-744024 = 255976 left of the annual cap
    #   -> pay 255976 (annual_cap)
    # net = 877855 - 255976 = 621879
    "xishui-2": {
        "buckets": (2800000, 1950000, 50000, 0, 800000),
        "pay": {
            "basic": 1640500,
            "critical": 216650,
            "assistance": 64995,
            "backbone": 255976,
        },
        "cap": {"backbone": "annual_cap"},
        "window_pay": 877855,
        "net_selfpay": 621879,
    },
    # xs-g1, general resident, township: A 150000; B 40000 -> pre 4000, in 36000;
    #   amoxicillin 2.5 boxes x 1000, limit 800: cap_total round(800*25000/10000) = 2000,
    #   amount 2500 -> over 500, in 2000. in_scope 188000.
    # basic (general township: deductible 10000, 90%): 178000*0.9 = 160200; left 27800
    # critical: deductible 27800, eligible 0
    # net = 27800 + 4000 + 500 = 32300
    "xishui-3": {
        "buckets": (192500, 188000, 4000, 500, 0),
        "pay": {"basic": 160200},
        "why": {"assistance": "tags_any", "backbone": "tags_any"},
        "window_pay": 32300,
        "net_selfpay": 32300,
    },
    # xs-p2, registered poor aged 19; 特困 tag only from 2017-07-01, after this admission.
    # A 300000; C 20000.
    # basic (poor township: deductible 5000, 95%): 295000*0.95 = 280250; left 19750
    # critical: deductible 19750, eligible 0
    # assistance: 特困 not valid on 2017-06-01 -> the 70% variant: 13825; left 5925
    # Backbone: discharged 2017-06-08, before the launch: the table in force
    #   (xishui/2017-01.yaml) has no Backbone layer
    # net = 5925 + 20000 = 25925
    "xishui-4": {
        "buckets": (320000, 300000, 0, 0, 20000),
        "pay": {"basic": 280250, "assistance": 13825},
        "variant": {"assistance": 1},
        "window_pay": 25925,
        "net_selfpay": 25925,
    },
    # xs-p3, registered poor aged 40, county, discharged 2017-07-05 (before the Backbone launch):
    #   A 2000000; C 500000.
    # basic (poor county: deductible 20000, 85%): 1980000*0.85 = 1683000; left 317000
    # critical (poor 300000 a year): deductible 300000, eligible 17000*0.6 = 10200; left 306800
    # assistance 70%: 214760; left 92040
    # no Backbone layer in the table in force; net = 92040 + 500000 = 592040
    "xishui-5": {
        "buckets": (2500000, 2000000, 0, 0, 500000),
        "pay": {"basic": 1683000, "critical": 10200, "assistance": 214760},
        "window_pay": 592040,
        "net_selfpay": 592040,
    },
    # xs-p3 again, county, admitted 2017-07-10 and discharged 2017-07-25: the discharge date
    #   picks xishui/2017-07.yaml. A 1000000; C 800000.
    # basic: 980000*0.85 = 833000; left 167000
    # critical: the account continues across the table versions (same layer id): deductible
    #   used up, year tiers 17000 -> 184000 at 60%: 110400 - 10200 = 100200; left 66800
    # assistance 70%: 46760 (paid 214760+46760 < 1000000); left 20040
    # window pay = 20040 + 800000 = 820040
    # Backbone (first bill under it this year): deductible 300000, 40% of 520040 = 208016
    # net = 820040 - 208016 = 612024
    "xishui-6": {
        "buckets": (1800000, 1000000, 0, 0, 800000),
        "pay": {"basic": 833000, "critical": 100200, "assistance": 46760, "backbone": 208016},
        "window_pay": 820040,
        "net_selfpay": 612024,
    },
    # -------------------------------------------------------------- Wei county 2018 (130434)
    # wx-c1, child of household wx-h1 (non_robust), county: A 3000000; C 400000.
    # basic (county: deductible 50000, 80%): 2950000*0.8 = 2360000; left 640000
    # critical (1800000 a year): deductible 640000, eligible 0
    # 防贫保 alert (household, every bucket): self-pay 640000+400000 = 1040000;
    #   household 0 -> 1040000 above threshold 0 -> relief 50% = 520000, alert raised
    "weixian-1": {
        "buckets": (3400000, 3000000, 0, 0, 400000),
        "pay": {"basic": 2360000},
        "relief": {"fangpinbao": 520000},
        "alerts": 1,
        "window_pay": 1040000,
        "net_selfpay": 1040000,
    },
    # wx-f1, father in the same household, city: A 1200000; B 300000 -> pre 30000, in 270000;
    #   C 219000. in_scope 1470000.
    # basic (city: deductible 100000, 70%): 1370000*0.7 = 959000; left 511000
    # critical (his own year account): deductible 511000, eligible 0
    # alert: self-pay 511000+30000+219000 = 760000; household 1040000 -> 1800000 (18,000 yuan)
    #   relief round(1800000*0.5) - round(1040000*0.5) = 900000 - 520000 = 380000
    #   (the household's relief this year: 9,000 yuan, domain.md section 8 example 5)
    "weixian-2": {
        "buckets": (1719000, 1470000, 30000, 0, 219000),
        "pay": {"basic": 959000},
        "relief": {"fangpinbao": 380000},
        "alerts": 1,
        "window_pay": 760000,
        "net_selfpay": 760000,
    },
    # wx-g1, general resident (no 防贫 tag), provincial hospital: A 5000000; C 100000.
    # basic (province: deductible 150000, 60%): 4850000*0.6 = 2910000; left 2090000
    # critical: deductible 1800000, eligible 290000*0.5 = 145000; left 1945000
    # alert: not a non_robust household -> no alert; net = 1945000 + 100000 = 2045000
    "weixian-3": {
        "buckets": (5100000, 5000000, 0, 0, 100000),
        "pay": {"basic": 2910000, "critical": 145000},
        "why": {"fangpinbao": "tags_any"},
        "alerts": 0,
        "window_pay": 2045000,
        "net_selfpay": 2045000,
    },
    # wx-l1, household wx-h3, non-poor low-income (the second group the source names), county:
    #   A 2000000; C 300000.
    # basic (county: deductible 50000, 80%): 1950000*0.8 = 1560000; left 440000
    # critical (1800000 a year): deductible 440000, eligible 0
    # alert (low-income variant, line 0, 50%): self-pay 440000+300000 = 740000 -> relief 370000
    "weixian-4": {
        "buckets": (2300000, 2000000, 0, 0, 300000),
        "pay": {"basic": 1560000},
        "variant": {"fangpinbao": 1},
        "relief": {"fangpinbao": 370000},
        "alerts": 1,
        "window_pay": 740000,
        "net_selfpay": 740000,
    },
}


def sample_bills() -> list[Bill]:
    files = sorted(p for p in SAMPLES.glob("*.json") if p.name != "registry.json")
    return [parse_bill(json.loads(p.read_text(encoding="utf-8"))) for p in files]


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("samples")


@pytest.fixture(scope="module")
def bills() -> list[Bill]:
    return sample_bills()


@pytest.fixture(scope="module")
def policies():
    return load_policies(POLICIES)


@pytest.fixture(scope="module", params=["reference", "kernel"])
def settled(request, bills, policies) -> dict[str, Settlement]:
    run = reference_batch if request.param == "reference" else settle_batch
    result: BatchResult = run(bills, policies)
    return {s.bill_id: s for s in result.settlements}


def test_every_sample_has_expectations(bills):
    assert sorted(b.id for b in bills) == sorted(EXPECTED)


def test_every_sample_file_is_a_valid_bill_with_consistent_amounts(bills):
    for b in bills:
        for it in b.items:
            # amount = unit_price x quantity, to the fen
            assert it.amount == (it.unit_price * it.qty_e4 + 5000) // 10000, (b.id, it.code)


@pytest.mark.parametrize("bill_id", sorted(EXPECTED))
def test_sample_settles_to_hand_figures(settled, bill_id):
    s = settled[bill_id]
    exp = EXPECTED[bill_id]
    s.check_conservation()
    b = s.buckets
    assert (b.total, b.in_scope, b.pre_selfpay, b.over_limit, b.out_of_catalogue) == exp["buckets"]
    pays = {r.layer_id: r.pay for r in s.layers}
    assert pays == {k: exp["pay"].get(k, 0) for k in pays}
    reasons = {r.layer_id: r.reason for r in s.layers}
    assert reasons == {k: exp.get("why", {}).get(k, "") for k in reasons}
    for lid, cap in exp.get("cap", {}).items():
        assert next(r for r in s.layers if r.layer_id == lid).cap == cap
    for lid, vi in exp.get("variant", {}).items():
        assert next(r for r in s.layers if r.layer_id == lid).variant == vi
    reliefs = {r.layer_id: r.relief for r in s.layers}
    assert reliefs == {k: exp.get("relief", {}).get(k, 0) for k in reliefs}
    if "alerts" in exp:
        assert len(s.alerts) == exp["alerts"]
    assert s.window_pay == exp["window_pay"]
    assert s.net_selfpay == exp["net_selfpay"]
    assert sum(r.pay for r in s.layers) + s.net_selfpay == b.total


def test_reference_and_kernel_agree(bills, policies):
    ref = reference_batch(bills, policies)
    ker = settle_batch(bills, policies)
    assert [s.to_dict() for s in ref.settlements] == [s.to_dict() for s in ker.settlements]
    # closing accounts are equal as they stand (neither keeps all-zero layer entries)
    assert ref.closing == ker.closing


def test_year_accounts_after_the_samples(bills, policies):
    """Year-to-date accounts after all samples (domain.md section 6)."""
    closing = settle_batch(bills, policies).closing
    # Longzhou lz-p1: critical deductible 156540 + 193460 = 350000 (used up); eligible 842715
    lz = closing.person_year("lz-p1", 2019)
    assert lz.admissions == 2
    assert lz.get("critical").deductible_used == 350000
    assert lz.get("critical").eligible_cum == 842715
    assert lz.get("assistance").paid == 10958 + 31239
    # Hong'an ha-p1: PICC in-catalogue self-pay 308896 + 2400; Backbone 572938 + 19440
    ha = closing.person_year("ha-p1", 2018)
    assert ha.get("picc_supplementary").selfpay_cum == 308896 + 2400
    assert ha.get("backbone").paid == 572938 + 19440
    assert ha.get("backbone").deductible_used == 190000
    # Xishui xs-p3: the critical account runs across the two 2017 table versions
    xs3 = closing.person_year("xs-p3", 2017)
    assert xs3.admissions == 2
    assert (xs3.get("critical").deductible_used, xs3.get("critical").eligible_cum) == (
        300000,
        17000 + 167000,
    )
    assert xs3.get("backbone").paid == 208016
    # Xishui xs-p1: Backbone annual cap used up: 744024 + 255976 = 1000000
    assert closing.person_year("xs-p1", 2017).get("backbone").paid == 1000000
    # Wei county household wx-h1: self-pay 1040000 + 760000, relief 520000 + 380000
    wx = closing.household_year("wx-h1", 2018).get("fangpinbao")
    assert (wx.selfpay_cum, wx.paid) == (1800000, 900000)
    # Longzhou household lz-h1: self-pay 127496 + 1286500, relief 456998
    lz1 = closing.household_year("lz-h1", 2019).get("chinalife_relief")
    assert (lz1.selfpay_cum, lz1.paid) == (127496 + 1286500, 456998)


#: what the registry says of a person beyond what a bill's person carries: where they are
#: insured and live (a bureau's scope, a cadre's cover list, a fund's enrolment)
WHERE = ("region", "township", "village")


def test_registry_holds_every_sample_person(bills):
    registry = json.loads((SAMPLES / "registry.json").read_text(encoding="utf-8"))
    by_id = {p["id"]: p for p in registry}
    assert len(by_id) == len(registry)
    for b in bills:
        person = {k: v for k, v in by_id[b.person.id].items() if k not in WHERE}
        assert b.person.model_dump(mode="json") == parse_bill(
            {**_minimal_bill(), "person": person}
        ).person.model_dump(mode="json")
        # every sample person is insured in the region of its bills
        assert by_id[b.person.id]["region"] == b.region


def test_the_readme_fund_walkthrough_finds_its_persons_in_the_sample_registry():
    """The README's cadre and person commands over `make serve`'s tables and sample registry:
    the Hong'an persons are insured in 421122 and live in 新集镇 (the cadre example), so the
    cover list and a person's cover are not empty (they were: no sample person had a region)."""
    from adapters.bootstrap import build

    app = build("memory://", ROOT / "policies", SAMPLES / "registry.json")
    assert app.funds is not None
    try:
        rows = app.funds.cover_list("421122", "新集镇", as_of="2018-12-31")
        assert sorted(r.person_id for r in rows) == ["ha-g1", "ha-p1", "ha-p2", "ha-p3"]
        covered = {r.person_id: r.fund_codes for r in rows}
        # the Backbone (370200) insures the registered poor aged 18-60: ha-p1 (45), not ha-p2
        # (66) nor ha-g1 (no tag)
        assert "370200" in covered["ha-p1"] and "370200" not in covered["ha-p2"]
        assert "370200" not in covered["ha-g1"]
        cover = app.funds.person_cover("ha-p1", 2018)
        assert cover.person.region == "421122"
        assert {f.fund_code for f in cover.funds} >= {"370200"}
    finally:
        app.close()


def _minimal_bill() -> dict:
    return {
        "id": "x",
        "hospital": "H1",
        "hospital_level": "county",
        "admission_date": "2019-01-01",
        "discharge_date": "2019-01-01",
        "items": [{"category": "A", "amount": 1}],
    }
