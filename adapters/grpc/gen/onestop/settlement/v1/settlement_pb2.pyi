from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_MODE_UNSPECIFIED: _ClassVar[StreamMode]
    STREAM_MODE_TRIAL: _ClassVar[StreamMode]
    STREAM_MODE_SETTLE: _ClassVar[StreamMode]
STREAM_MODE_UNSPECIFIED: StreamMode
STREAM_MODE_TRIAL: StreamMode
STREAM_MODE_SETTLE: StreamMode

class Item(_message.Message):
    __slots__ = ("code", "name", "category", "qty_e4", "unit_price", "amount", "unit_price_cap", "selfpay_ratio")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    QTY_E4_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_CAP_FIELD_NUMBER: _ClassVar[int]
    SELFPAY_RATIO_FIELD_NUMBER: _ClassVar[int]
    code: str
    name: str
    category: str
    qty_e4: int
    unit_price: int
    amount: int
    unit_price_cap: int
    selfpay_ratio: int
    def __init__(self, code: _Optional[str] = ..., name: _Optional[str] = ..., category: _Optional[str] = ..., qty_e4: _Optional[int] = ..., unit_price: _Optional[int] = ..., amount: _Optional[int] = ..., unit_price_cap: _Optional[int] = ..., selfpay_ratio: _Optional[int] = ...) -> None: ...

class Bill(_message.Message):
    __slots__ = ("id", "region", "person_id", "hospital_level", "admission_date", "discharge_date", "items", "hospital")
    ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_LEVEL_FIELD_NUMBER: _ClassVar[int]
    ADMISSION_DATE_FIELD_NUMBER: _ClassVar[int]
    DISCHARGE_DATE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_FIELD_NUMBER: _ClassVar[int]
    id: str
    region: str
    person_id: str
    hospital_level: str
    admission_date: str
    discharge_date: str
    items: _containers.RepeatedCompositeFieldContainer[Item]
    hospital: str
    def __init__(self, id: _Optional[str] = ..., region: _Optional[str] = ..., person_id: _Optional[str] = ..., hospital_level: _Optional[str] = ..., admission_date: _Optional[str] = ..., discharge_date: _Optional[str] = ..., items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., hospital: _Optional[str] = ...) -> None: ...

class Buckets(_message.Message):
    __slots__ = ("total", "out_of_catalogue", "over_limit", "pre_selfpay", "in_scope")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_CATALOGUE_FIELD_NUMBER: _ClassVar[int]
    OVER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PRE_SELFPAY_FIELD_NUMBER: _ClassVar[int]
    IN_SCOPE_FIELD_NUMBER: _ClassVar[int]
    total: int
    out_of_catalogue: int
    over_limit: int
    pre_selfpay: int
    in_scope: int
    def __init__(self, total: _Optional[int] = ..., out_of_catalogue: _Optional[int] = ..., over_limit: _Optional[int] = ..., pre_selfpay: _Optional[int] = ..., in_scope: _Optional[int] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("deductible_used", "eligible_cum", "paid", "selfpay_cum")
    DEDUCTIBLE_USED_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_CUM_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    SELFPAY_CUM_FIELD_NUMBER: _ClassVar[int]
    deductible_used: int
    eligible_cum: int
    paid: int
    selfpay_cum: int
    def __init__(self, deductible_used: _Optional[int] = ..., eligible_cum: _Optional[int] = ..., paid: _Optional[int] = ..., selfpay_cum: _Optional[int] = ...) -> None: ...

class LayerResult(_message.Message):
    __slots__ = ("layer_id", "kind", "fund_code", "settle_at", "scope", "applied", "reason", "variant", "variant_label", "base", "deductible", "eligible", "pay", "relief", "cap", "account_after", "alert", "name", "name_zh")
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    SETTLE_AT_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    VARIANT_LABEL_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    DEDUCTIBLE_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    PAY_FIELD_NUMBER: _ClassVar[int]
    RELIEF_FIELD_NUMBER: _ClassVar[int]
    CAP_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_AFTER_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_ZH_FIELD_NUMBER: _ClassVar[int]
    layer_id: str
    kind: str
    fund_code: str
    settle_at: str
    scope: str
    applied: bool
    reason: str
    variant: int
    variant_label: str
    base: int
    deductible: int
    eligible: int
    pay: int
    relief: int
    cap: str
    account_after: Account
    alert: bool
    name: str
    name_zh: str
    def __init__(self, layer_id: _Optional[str] = ..., kind: _Optional[str] = ..., fund_code: _Optional[str] = ..., settle_at: _Optional[str] = ..., scope: _Optional[str] = ..., applied: _Optional[bool] = ..., reason: _Optional[str] = ..., variant: _Optional[int] = ..., variant_label: _Optional[str] = ..., base: _Optional[int] = ..., deductible: _Optional[int] = ..., eligible: _Optional[int] = ..., pay: _Optional[int] = ..., relief: _Optional[int] = ..., cap: _Optional[str] = ..., account_after: _Optional[_Union[Account, _Mapping]] = ..., alert: _Optional[bool] = ..., name: _Optional[str] = ..., name_zh: _Optional[str] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("person_id", "household", "layer_id", "year", "selfpay_cum", "relief")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    SELFPAY_CUM_FIELD_NUMBER: _ClassVar[int]
    RELIEF_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    household: str
    layer_id: str
    year: int
    selfpay_cum: int
    relief: int
    def __init__(self, person_id: _Optional[str] = ..., household: _Optional[str] = ..., layer_id: _Optional[str] = ..., year: _Optional[int] = ..., selfpay_cum: _Optional[int] = ..., relief: _Optional[int] = ...) -> None: ...

class SettlementResult(_message.Message):
    __slots__ = ("bill_id", "person_id", "household", "region", "policy", "year", "discharge_date", "admission_no", "buckets", "layers", "window_pay", "net_selfpay", "funds_total", "alerts", "admissions_after", "explanation", "hospital", "items")
    BILL_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    DISCHARGE_DATE_FIELD_NUMBER: _ClassVar[int]
    ADMISSION_NO_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_PAY_FIELD_NUMBER: _ClassVar[int]
    NET_SELFPAY_FIELD_NUMBER: _ClassVar[int]
    FUNDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    ADMISSIONS_AFTER_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    bill_id: str
    person_id: str
    household: str
    region: str
    policy: str
    year: int
    discharge_date: str
    admission_no: int
    buckets: Buckets
    layers: _containers.RepeatedCompositeFieldContainer[LayerResult]
    window_pay: int
    net_selfpay: int
    funds_total: int
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    admissions_after: int
    explanation: _containers.RepeatedCompositeFieldContainer[ExplanationLine]
    hospital: str
    items: _containers.RepeatedCompositeFieldContainer[ItemAllocation]
    def __init__(self, bill_id: _Optional[str] = ..., person_id: _Optional[str] = ..., household: _Optional[str] = ..., region: _Optional[str] = ..., policy: _Optional[str] = ..., year: _Optional[int] = ..., discharge_date: _Optional[str] = ..., admission_no: _Optional[int] = ..., buckets: _Optional[_Union[Buckets, _Mapping]] = ..., layers: _Optional[_Iterable[_Union[LayerResult, _Mapping]]] = ..., window_pay: _Optional[int] = ..., net_selfpay: _Optional[int] = ..., funds_total: _Optional[int] = ..., alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., admissions_after: _Optional[int] = ..., explanation: _Optional[_Iterable[_Union[ExplanationLine, _Mapping]]] = ..., hospital: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ItemAllocation, _Mapping]]] = ...) -> None: ...

class ItemAllocation(_message.Message):
    __slots__ = ("index", "code", "name", "amount", "shares", "selfpay", "window_pay")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    SELFPAY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_PAY_FIELD_NUMBER: _ClassVar[int]
    index: int
    code: str
    name: str
    amount: int
    shares: _containers.RepeatedCompositeFieldContainer[FundShare]
    selfpay: int
    window_pay: int
    def __init__(self, index: _Optional[int] = ..., code: _Optional[str] = ..., name: _Optional[str] = ..., amount: _Optional[int] = ..., shares: _Optional[_Iterable[_Union[FundShare, _Mapping]]] = ..., selfpay: _Optional[int] = ..., window_pay: _Optional[int] = ...) -> None: ...

class FundShare(_message.Message):
    __slots__ = ("fund_code", "layer_id", "amount", "settle_at")
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    SETTLE_AT_FIELD_NUMBER: _ClassVar[int]
    fund_code: str
    layer_id: str
    amount: int
    settle_at: str
    def __init__(self, fund_code: _Optional[str] = ..., layer_id: _Optional[str] = ..., amount: _Optional[int] = ..., settle_at: _Optional[str] = ...) -> None: ...

class ExplanationLine(_message.Message):
    __slots__ = ("en", "zh")
    EN_FIELD_NUMBER: _ClassVar[int]
    ZH_FIELD_NUMBER: _ClassVar[int]
    en: str
    zh: str
    def __init__(self, en: _Optional[str] = ..., zh: _Optional[str] = ...) -> None: ...

class SettlementRecord(_message.Message):
    __slots__ = ("settlement_id", "request_id", "status", "created_at", "reversed_at", "reversal_request_id", "result", "bill_digest", "registry_version")
    SETTLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVERSED_AT_FIELD_NUMBER: _ClassVar[int]
    REVERSAL_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    BILL_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    settlement_id: str
    request_id: str
    status: str
    created_at: str
    reversed_at: str
    reversal_request_id: str
    result: SettlementResult
    bill_digest: str
    registry_version: int
    def __init__(self, settlement_id: _Optional[str] = ..., request_id: _Optional[str] = ..., status: _Optional[str] = ..., created_at: _Optional[str] = ..., reversed_at: _Optional[str] = ..., reversal_request_id: _Optional[str] = ..., result: _Optional[_Union[SettlementResult, _Mapping]] = ..., bill_digest: _Optional[str] = ..., registry_version: _Optional[int] = ...) -> None: ...

class PreSettleRequest(_message.Message):
    __slots__ = ("bill", "allocate")
    BILL_FIELD_NUMBER: _ClassVar[int]
    ALLOCATE_FIELD_NUMBER: _ClassVar[int]
    bill: Bill
    allocate: bool
    def __init__(self, bill: _Optional[_Union[Bill, _Mapping]] = ..., allocate: _Optional[bool] = ...) -> None: ...

class PreSettleResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: SettlementResult
    def __init__(self, result: _Optional[_Union[SettlementResult, _Mapping]] = ...) -> None: ...

class SettleRequest(_message.Message):
    __slots__ = ("request_id", "bill", "allocate")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BILL_FIELD_NUMBER: _ClassVar[int]
    ALLOCATE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    bill: Bill
    allocate: bool
    def __init__(self, request_id: _Optional[str] = ..., bill: _Optional[_Union[Bill, _Mapping]] = ..., allocate: _Optional[bool] = ...) -> None: ...

class SettleResponse(_message.Message):
    __slots__ = ("settlement", "replay")
    SETTLEMENT_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    settlement: SettlementRecord
    replay: bool
    def __init__(self, settlement: _Optional[_Union[SettlementRecord, _Mapping]] = ..., replay: _Optional[bool] = ...) -> None: ...

class ReverseRequest(_message.Message):
    __slots__ = ("settlement_id", "request_id", "reversal_request_id")
    SETTLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REVERSAL_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    settlement_id: str
    request_id: str
    reversal_request_id: str
    def __init__(self, settlement_id: _Optional[str] = ..., request_id: _Optional[str] = ..., reversal_request_id: _Optional[str] = ...) -> None: ...

class ReverseResponse(_message.Message):
    __slots__ = ("settlement", "replay")
    SETTLEMENT_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    settlement: SettlementRecord
    replay: bool
    def __init__(self, settlement: _Optional[_Union[SettlementRecord, _Mapping]] = ..., replay: _Optional[bool] = ...) -> None: ...

class GetSettlementRequest(_message.Message):
    __slots__ = ("settlement_id", "request_id", "allocate")
    SETTLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ALLOCATE_FIELD_NUMBER: _ClassVar[int]
    settlement_id: str
    request_id: str
    allocate: bool
    def __init__(self, settlement_id: _Optional[str] = ..., request_id: _Optional[str] = ..., allocate: _Optional[bool] = ...) -> None: ...

class GetSettlementResponse(_message.Message):
    __slots__ = ("settlement",)
    SETTLEMENT_FIELD_NUMBER: _ClassVar[int]
    settlement: SettlementRecord
    def __init__(self, settlement: _Optional[_Union[SettlementRecord, _Mapping]] = ...) -> None: ...

class ListSettlementsRequest(_message.Message):
    __slots__ = ("person_id", "year", "page_size", "page_token")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    year: int
    page_size: int
    page_token: str
    def __init__(self, person_id: _Optional[str] = ..., year: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSettlementsResponse(_message.Message):
    __slots__ = ("settlements", "next_page_token")
    SETTLEMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    settlements: _containers.RepeatedCompositeFieldContainer[SettlementRecord]
    next_page_token: str
    def __init__(self, settlements: _Optional[_Iterable[_Union[SettlementRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetAccountsRequest(_message.Message):
    __slots__ = ("person_id", "year")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    year: int
    def __init__(self, person_id: _Optional[str] = ..., year: _Optional[int] = ...) -> None: ...

class LayerAccount(_message.Message):
    __slots__ = ("layer_id", "account")
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    layer_id: str
    account: Account
    def __init__(self, layer_id: _Optional[str] = ..., account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class YearAccounts(_message.Message):
    __slots__ = ("admissions", "layers")
    ADMISSIONS_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    admissions: int
    layers: _containers.RepeatedCompositeFieldContainer[LayerAccount]
    def __init__(self, admissions: _Optional[int] = ..., layers: _Optional[_Iterable[_Union[LayerAccount, _Mapping]]] = ...) -> None: ...

class GetAccountsResponse(_message.Message):
    __slots__ = ("person_id", "household", "year", "person", "household_accounts")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    PERSON_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    household: str
    year: int
    person: YearAccounts
    household_accounts: YearAccounts
    def __init__(self, person_id: _Optional[str] = ..., household: _Optional[str] = ..., year: _Optional[int] = ..., person: _Optional[_Union[YearAccounts, _Mapping]] = ..., household_accounts: _Optional[_Union[YearAccounts, _Mapping]] = ...) -> None: ...

class PackedBills(_message.Message):
    __slots__ = ("bill_ids", "person_ids", "level_index", "levels", "admission_dates", "discharge_dates", "regions", "request_ids", "item_offsets", "category", "qty_e4", "amount", "unit_price_cap", "selfpay_ratio", "unit_price", "hospitals", "item_codes", "item_names", "item_offsets_le", "category_i8", "qty_e4_le", "amount_le", "unit_price_cap_le", "selfpay_ratio_le", "unit_price_le", "item_offsets_i32", "qty_e4_i32", "amount_i32", "unit_price_cap_i32", "selfpay_ratio_i16", "unit_price_i32", "bill_ids_joined", "bill_id_offsets_i32", "person_index_i32", "person_table", "hospital_index_i32", "hospital_table", "region_index_i32", "region_table", "admission_dates_joined", "discharge_dates_joined")
    BILL_IDS_FIELD_NUMBER: _ClassVar[int]
    PERSON_IDS_FIELD_NUMBER: _ClassVar[int]
    LEVEL_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    ADMISSION_DATES_FIELD_NUMBER: _ClassVar[int]
    DISCHARGE_DATES_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    ITEM_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    QTY_E4_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_CAP_FIELD_NUMBER: _ClassVar[int]
    SELFPAY_RATIO_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    HOSPITALS_FIELD_NUMBER: _ClassVar[int]
    ITEM_CODES_FIELD_NUMBER: _ClassVar[int]
    ITEM_NAMES_FIELD_NUMBER: _ClassVar[int]
    ITEM_OFFSETS_LE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_I8_FIELD_NUMBER: _ClassVar[int]
    QTY_E4_LE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_LE_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_CAP_LE_FIELD_NUMBER: _ClassVar[int]
    SELFPAY_RATIO_LE_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_LE_FIELD_NUMBER: _ClassVar[int]
    ITEM_OFFSETS_I32_FIELD_NUMBER: _ClassVar[int]
    QTY_E4_I32_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_I32_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_CAP_I32_FIELD_NUMBER: _ClassVar[int]
    SELFPAY_RATIO_I16_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_I32_FIELD_NUMBER: _ClassVar[int]
    BILL_IDS_JOINED_FIELD_NUMBER: _ClassVar[int]
    BILL_ID_OFFSETS_I32_FIELD_NUMBER: _ClassVar[int]
    PERSON_INDEX_I32_FIELD_NUMBER: _ClassVar[int]
    PERSON_TABLE_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_INDEX_I32_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_TABLE_FIELD_NUMBER: _ClassVar[int]
    REGION_INDEX_I32_FIELD_NUMBER: _ClassVar[int]
    REGION_TABLE_FIELD_NUMBER: _ClassVar[int]
    ADMISSION_DATES_JOINED_FIELD_NUMBER: _ClassVar[int]
    DISCHARGE_DATES_JOINED_FIELD_NUMBER: _ClassVar[int]
    bill_ids: _containers.RepeatedScalarFieldContainer[str]
    person_ids: _containers.RepeatedScalarFieldContainer[str]
    level_index: _containers.RepeatedScalarFieldContainer[int]
    levels: _containers.RepeatedScalarFieldContainer[str]
    admission_dates: _containers.RepeatedScalarFieldContainer[str]
    discharge_dates: _containers.RepeatedScalarFieldContainer[str]
    regions: _containers.RepeatedScalarFieldContainer[str]
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    item_offsets: _containers.RepeatedScalarFieldContainer[int]
    category: _containers.RepeatedScalarFieldContainer[int]
    qty_e4: _containers.RepeatedScalarFieldContainer[int]
    amount: _containers.RepeatedScalarFieldContainer[int]
    unit_price_cap: _containers.RepeatedScalarFieldContainer[int]
    selfpay_ratio: _containers.RepeatedScalarFieldContainer[int]
    unit_price: _containers.RepeatedScalarFieldContainer[int]
    hospitals: _containers.RepeatedScalarFieldContainer[str]
    item_codes: _containers.RepeatedScalarFieldContainer[str]
    item_names: _containers.RepeatedScalarFieldContainer[str]
    item_offsets_le: bytes
    category_i8: bytes
    qty_e4_le: bytes
    amount_le: bytes
    unit_price_cap_le: bytes
    selfpay_ratio_le: bytes
    unit_price_le: bytes
    item_offsets_i32: bytes
    qty_e4_i32: bytes
    amount_i32: bytes
    unit_price_cap_i32: bytes
    selfpay_ratio_i16: bytes
    unit_price_i32: bytes
    bill_ids_joined: bytes
    bill_id_offsets_i32: bytes
    person_index_i32: bytes
    person_table: _containers.RepeatedScalarFieldContainer[str]
    hospital_index_i32: bytes
    hospital_table: _containers.RepeatedScalarFieldContainer[str]
    region_index_i32: bytes
    region_table: _containers.RepeatedScalarFieldContainer[str]
    admission_dates_joined: bytes
    discharge_dates_joined: bytes
    def __init__(self, bill_ids: _Optional[_Iterable[str]] = ..., person_ids: _Optional[_Iterable[str]] = ..., level_index: _Optional[_Iterable[int]] = ..., levels: _Optional[_Iterable[str]] = ..., admission_dates: _Optional[_Iterable[str]] = ..., discharge_dates: _Optional[_Iterable[str]] = ..., regions: _Optional[_Iterable[str]] = ..., request_ids: _Optional[_Iterable[str]] = ..., item_offsets: _Optional[_Iterable[int]] = ..., category: _Optional[_Iterable[int]] = ..., qty_e4: _Optional[_Iterable[int]] = ..., amount: _Optional[_Iterable[int]] = ..., unit_price_cap: _Optional[_Iterable[int]] = ..., selfpay_ratio: _Optional[_Iterable[int]] = ..., unit_price: _Optional[_Iterable[int]] = ..., hospitals: _Optional[_Iterable[str]] = ..., item_codes: _Optional[_Iterable[str]] = ..., item_names: _Optional[_Iterable[str]] = ..., item_offsets_le: _Optional[bytes] = ..., category_i8: _Optional[bytes] = ..., qty_e4_le: _Optional[bytes] = ..., amount_le: _Optional[bytes] = ..., unit_price_cap_le: _Optional[bytes] = ..., selfpay_ratio_le: _Optional[bytes] = ..., unit_price_le: _Optional[bytes] = ..., item_offsets_i32: _Optional[bytes] = ..., qty_e4_i32: _Optional[bytes] = ..., amount_i32: _Optional[bytes] = ..., unit_price_cap_i32: _Optional[bytes] = ..., selfpay_ratio_i16: _Optional[bytes] = ..., unit_price_i32: _Optional[bytes] = ..., bill_ids_joined: _Optional[bytes] = ..., bill_id_offsets_i32: _Optional[bytes] = ..., person_index_i32: _Optional[bytes] = ..., person_table: _Optional[_Iterable[str]] = ..., hospital_index_i32: _Optional[bytes] = ..., hospital_table: _Optional[_Iterable[str]] = ..., region_index_i32: _Optional[bytes] = ..., region_table: _Optional[_Iterable[str]] = ..., admission_dates_joined: _Optional[bytes] = ..., discharge_dates_joined: _Optional[bytes] = ...) -> None: ...

class BillList(_message.Message):
    __slots__ = ("bills",)
    BILLS_FIELD_NUMBER: _ClassVar[int]
    bills: _containers.RepeatedCompositeFieldContainer[SettleRequest]
    def __init__(self, bills: _Optional[_Iterable[_Union[SettleRequest, _Mapping]]] = ...) -> None: ...

class SettleStreamRequest(_message.Message):
    __slots__ = ("mode", "bills", "packed", "packed_results", "packed_results_le")
    MODE_FIELD_NUMBER: _ClassVar[int]
    BILLS_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    PACKED_RESULTS_FIELD_NUMBER: _ClassVar[int]
    PACKED_RESULTS_LE_FIELD_NUMBER: _ClassVar[int]
    mode: StreamMode
    bills: BillList
    packed: PackedBills
    packed_results: bool
    packed_results_le: bool
    def __init__(self, mode: _Optional[_Union[StreamMode, str]] = ..., bills: _Optional[_Union[BillList, _Mapping]] = ..., packed: _Optional[_Union[PackedBills, _Mapping]] = ..., packed_results: _Optional[bool] = ..., packed_results_le: _Optional[bool] = ...) -> None: ...

class PackedResults(_message.Message):
    __slots__ = ("bill_ids", "total", "in_scope", "pre_selfpay", "over_limit", "out_of_catalogue", "window_pay", "net_selfpay", "funds_total", "layer_offsets", "layer_ids", "fund_codes", "layer_pay", "layer_relief", "settlement_ids", "total_le", "in_scope_le", "pre_selfpay_le", "over_limit_le", "out_of_catalogue_le", "window_pay_le", "net_selfpay_le", "funds_total_le", "layer_offsets_le", "layer_pay_le", "layer_relief_le", "layer_key_i32", "layer_key_ids", "layer_key_fund_codes")
    BILL_IDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    IN_SCOPE_FIELD_NUMBER: _ClassVar[int]
    PRE_SELFPAY_FIELD_NUMBER: _ClassVar[int]
    OVER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_CATALOGUE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_PAY_FIELD_NUMBER: _ClassVar[int]
    NET_SELFPAY_FIELD_NUMBER: _ClassVar[int]
    FUNDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    LAYER_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    LAYER_IDS_FIELD_NUMBER: _ClassVar[int]
    FUND_CODES_FIELD_NUMBER: _ClassVar[int]
    LAYER_PAY_FIELD_NUMBER: _ClassVar[int]
    LAYER_RELIEF_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_LE_FIELD_NUMBER: _ClassVar[int]
    IN_SCOPE_LE_FIELD_NUMBER: _ClassVar[int]
    PRE_SELFPAY_LE_FIELD_NUMBER: _ClassVar[int]
    OVER_LIMIT_LE_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_CATALOGUE_LE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_PAY_LE_FIELD_NUMBER: _ClassVar[int]
    NET_SELFPAY_LE_FIELD_NUMBER: _ClassVar[int]
    FUNDS_TOTAL_LE_FIELD_NUMBER: _ClassVar[int]
    LAYER_OFFSETS_LE_FIELD_NUMBER: _ClassVar[int]
    LAYER_PAY_LE_FIELD_NUMBER: _ClassVar[int]
    LAYER_RELIEF_LE_FIELD_NUMBER: _ClassVar[int]
    LAYER_KEY_I32_FIELD_NUMBER: _ClassVar[int]
    LAYER_KEY_IDS_FIELD_NUMBER: _ClassVar[int]
    LAYER_KEY_FUND_CODES_FIELD_NUMBER: _ClassVar[int]
    bill_ids: _containers.RepeatedScalarFieldContainer[str]
    total: _containers.RepeatedScalarFieldContainer[int]
    in_scope: _containers.RepeatedScalarFieldContainer[int]
    pre_selfpay: _containers.RepeatedScalarFieldContainer[int]
    over_limit: _containers.RepeatedScalarFieldContainer[int]
    out_of_catalogue: _containers.RepeatedScalarFieldContainer[int]
    window_pay: _containers.RepeatedScalarFieldContainer[int]
    net_selfpay: _containers.RepeatedScalarFieldContainer[int]
    funds_total: _containers.RepeatedScalarFieldContainer[int]
    layer_offsets: _containers.RepeatedScalarFieldContainer[int]
    layer_ids: _containers.RepeatedScalarFieldContainer[str]
    fund_codes: _containers.RepeatedScalarFieldContainer[str]
    layer_pay: _containers.RepeatedScalarFieldContainer[int]
    layer_relief: _containers.RepeatedScalarFieldContainer[int]
    settlement_ids: _containers.RepeatedScalarFieldContainer[str]
    total_le: bytes
    in_scope_le: bytes
    pre_selfpay_le: bytes
    over_limit_le: bytes
    out_of_catalogue_le: bytes
    window_pay_le: bytes
    net_selfpay_le: bytes
    funds_total_le: bytes
    layer_offsets_le: bytes
    layer_pay_le: bytes
    layer_relief_le: bytes
    layer_key_i32: bytes
    layer_key_ids: _containers.RepeatedScalarFieldContainer[str]
    layer_key_fund_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, bill_ids: _Optional[_Iterable[str]] = ..., total: _Optional[_Iterable[int]] = ..., in_scope: _Optional[_Iterable[int]] = ..., pre_selfpay: _Optional[_Iterable[int]] = ..., over_limit: _Optional[_Iterable[int]] = ..., out_of_catalogue: _Optional[_Iterable[int]] = ..., window_pay: _Optional[_Iterable[int]] = ..., net_selfpay: _Optional[_Iterable[int]] = ..., funds_total: _Optional[_Iterable[int]] = ..., layer_offsets: _Optional[_Iterable[int]] = ..., layer_ids: _Optional[_Iterable[str]] = ..., fund_codes: _Optional[_Iterable[str]] = ..., layer_pay: _Optional[_Iterable[int]] = ..., layer_relief: _Optional[_Iterable[int]] = ..., settlement_ids: _Optional[_Iterable[str]] = ..., total_le: _Optional[bytes] = ..., in_scope_le: _Optional[bytes] = ..., pre_selfpay_le: _Optional[bytes] = ..., over_limit_le: _Optional[bytes] = ..., out_of_catalogue_le: _Optional[bytes] = ..., window_pay_le: _Optional[bytes] = ..., net_selfpay_le: _Optional[bytes] = ..., funds_total_le: _Optional[bytes] = ..., layer_offsets_le: _Optional[bytes] = ..., layer_pay_le: _Optional[bytes] = ..., layer_relief_le: _Optional[bytes] = ..., layer_key_i32: _Optional[bytes] = ..., layer_key_ids: _Optional[_Iterable[str]] = ..., layer_key_fund_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class SettleStreamResponse(_message.Message):
    __slots__ = ("n_bills", "n_items", "results", "settlement_ids", "replay", "packed")
    N_BILLS_FIELD_NUMBER: _ClassVar[int]
    N_ITEMS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    n_bills: int
    n_items: int
    results: _containers.RepeatedCompositeFieldContainer[SettlementResult]
    settlement_ids: _containers.RepeatedScalarFieldContainer[str]
    replay: _containers.RepeatedScalarFieldContainer[bool]
    packed: PackedResults
    def __init__(self, n_bills: _Optional[int] = ..., n_items: _Optional[int] = ..., results: _Optional[_Iterable[_Union[SettlementResult, _Mapping]]] = ..., settlement_ids: _Optional[_Iterable[str]] = ..., replay: _Optional[_Iterable[bool]] = ..., packed: _Optional[_Union[PackedResults, _Mapping]] = ...) -> None: ...

class PutPolicyRequest(_message.Message):
    __slots__ = ("yaml", "source_name", "dry_run")
    YAML_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    source_name: str
    dry_run: bool
    def __init__(self, yaml: _Optional[str] = ..., source_name: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class PutPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: PolicyVersion
    def __init__(self, policy: _Optional[_Union[PolicyVersion, _Mapping]] = ...) -> None: ...

class PolicyVersion(_message.Message):
    __slots__ = ("version", "region", "region_name", "effective_from", "effective_to", "title", "source_name", "created_at", "in_force", "layer_ids", "yaml", "unchanged")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    REGION_NAME_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FROM_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TO_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    LAYER_IDS_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    version: int
    region: str
    region_name: str
    effective_from: str
    effective_to: str
    title: str
    source_name: str
    created_at: str
    in_force: bool
    layer_ids: _containers.RepeatedScalarFieldContainer[str]
    yaml: str
    unchanged: bool
    def __init__(self, version: _Optional[int] = ..., region: _Optional[str] = ..., region_name: _Optional[str] = ..., effective_from: _Optional[str] = ..., effective_to: _Optional[str] = ..., title: _Optional[str] = ..., source_name: _Optional[str] = ..., created_at: _Optional[str] = ..., in_force: _Optional[bool] = ..., layer_ids: _Optional[_Iterable[str]] = ..., yaml: _Optional[str] = ..., unchanged: _Optional[bool] = ...) -> None: ...

class ListPoliciesRequest(_message.Message):
    __slots__ = ("region",)
    REGION_FIELD_NUMBER: _ClassVar[int]
    region: str
    def __init__(self, region: _Optional[str] = ...) -> None: ...

class ListPoliciesResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[PolicyVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[PolicyVersion, _Mapping]]] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class GetPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: PolicyVersion
    def __init__(self, policy: _Optional[_Union[PolicyVersion, _Mapping]] = ...) -> None: ...

class TagSpan(_message.Message):
    __slots__ = ("tag", "valid_from", "valid_to")
    TAG_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    tag: str
    valid_from: str
    valid_to: str
    def __init__(self, tag: _Optional[str] = ..., valid_from: _Optional[str] = ..., valid_to: _Optional[str] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("id", "birth_date", "household", "tags", "region", "township", "village")
    ID_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    TOWNSHIP_FIELD_NUMBER: _ClassVar[int]
    VILLAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    birth_date: str
    household: str
    tags: _containers.RepeatedCompositeFieldContainer[TagSpan]
    region: str
    township: str
    village: str
    def __init__(self, id: _Optional[str] = ..., birth_date: _Optional[str] = ..., household: _Optional[str] = ..., tags: _Optional[_Iterable[_Union[TagSpan, _Mapping]]] = ..., region: _Optional[str] = ..., township: _Optional[str] = ..., village: _Optional[str] = ...) -> None: ...

class ImportRegistryRequest(_message.Message):
    __slots__ = ("persons",)
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    persons: _containers.RepeatedCompositeFieldContainer[Person]
    def __init__(self, persons: _Optional[_Iterable[_Union[Person, _Mapping]]] = ...) -> None: ...

class ImportRegistryResponse(_message.Message):
    __slots__ = ("imported",)
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    imported: int
    def __init__(self, imported: _Optional[int] = ...) -> None: ...

class FundAmount(_message.Message):
    __slots__ = ("fund_code", "pay")
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    PAY_FIELD_NUMBER: _ClassVar[int]
    fund_code: str
    pay: int
    def __init__(self, fund_code: _Optional[str] = ..., pay: _Optional[int] = ...) -> None: ...

class FundAmounts(_message.Message):
    __slots__ = ("funds",)
    FUNDS_FIELD_NUMBER: _ClassVar[int]
    funds: _containers.RepeatedCompositeFieldContainer[FundAmount]
    def __init__(self, funds: _Optional[_Iterable[_Union[FundAmount, _Mapping]]] = ...) -> None: ...

class HospitalTotals(_message.Message):
    __slots__ = ("fixmedins_setl_cnt", "medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay", "funds")
    FIXMEDINS_SETL_CNT_FIELD_NUMBER: _ClassVar[int]
    MEDFEE_SUMAMT_FIELD_NUMBER: _ClassVar[int]
    FUND_PAY_SUMAMT_FIELD_NUMBER: _ClassVar[int]
    PSN_CASH_PAY_FIELD_NUMBER: _ClassVar[int]
    FUNDS_FIELD_NUMBER: _ClassVar[int]
    fixmedins_setl_cnt: int
    medfee_sumamt: int
    fund_pay_sumamt: int
    psn_cash_pay: int
    funds: FundAmounts
    def __init__(self, fixmedins_setl_cnt: _Optional[int] = ..., medfee_sumamt: _Optional[int] = ..., fund_pay_sumamt: _Optional[int] = ..., psn_cash_pay: _Optional[int] = ..., funds: _Optional[_Union[FundAmounts, _Mapping]] = ...) -> None: ...

class HospitalSettlement(_message.Message):
    __slots__ = ("settlement_id", "reversal", "medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay")
    SETTLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REVERSAL_FIELD_NUMBER: _ClassVar[int]
    MEDFEE_SUMAMT_FIELD_NUMBER: _ClassVar[int]
    FUND_PAY_SUMAMT_FIELD_NUMBER: _ClassVar[int]
    PSN_CASH_PAY_FIELD_NUMBER: _ClassVar[int]
    settlement_id: str
    reversal: bool
    medfee_sumamt: int
    fund_pay_sumamt: int
    psn_cash_pay: int
    def __init__(self, settlement_id: _Optional[str] = ..., reversal: _Optional[bool] = ..., medfee_sumamt: _Optional[int] = ..., fund_pay_sumamt: _Optional[int] = ..., psn_cash_pay: _Optional[int] = ...) -> None: ...

class HospitalList(_message.Message):
    __slots__ = ("settlements",)
    SETTLEMENTS_FIELD_NUMBER: _ClassVar[int]
    settlements: _containers.RepeatedCompositeFieldContainer[HospitalSettlement]
    def __init__(self, settlements: _Optional[_Iterable[_Union[HospitalSettlement, _Mapping]]] = ...) -> None: ...

class ReconcileRequest(_message.Message):
    __slots__ = ("hospital", "from_date", "to_date", "theirs", "their_list")
    HOSPITAL_FIELD_NUMBER: _ClassVar[int]
    FROM_DATE_FIELD_NUMBER: _ClassVar[int]
    TO_DATE_FIELD_NUMBER: _ClassVar[int]
    THEIRS_FIELD_NUMBER: _ClassVar[int]
    THEIR_LIST_FIELD_NUMBER: _ClassVar[int]
    hospital: str
    from_date: str
    to_date: str
    theirs: HospitalTotals
    their_list: HospitalList
    def __init__(self, hospital: _Optional[str] = ..., from_date: _Optional[str] = ..., to_date: _Optional[str] = ..., theirs: _Optional[_Union[HospitalTotals, _Mapping]] = ..., their_list: _Optional[_Union[HospitalList, _Mapping]] = ...) -> None: ...

class ReconTotals(_message.Message):
    __slots__ = ("fixmedins_setl_cnt", "medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay", "window_funds", "after_discharge_funds")
    FIXMEDINS_SETL_CNT_FIELD_NUMBER: _ClassVar[int]
    MEDFEE_SUMAMT_FIELD_NUMBER: _ClassVar[int]
    FUND_PAY_SUMAMT_FIELD_NUMBER: _ClassVar[int]
    PSN_CASH_PAY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FUNDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_DISCHARGE_FUNDS_FIELD_NUMBER: _ClassVar[int]
    fixmedins_setl_cnt: int
    medfee_sumamt: int
    fund_pay_sumamt: int
    psn_cash_pay: int
    window_funds: _containers.RepeatedCompositeFieldContainer[FundAmount]
    after_discharge_funds: _containers.RepeatedCompositeFieldContainer[FundAmount]
    def __init__(self, fixmedins_setl_cnt: _Optional[int] = ..., medfee_sumamt: _Optional[int] = ..., fund_pay_sumamt: _Optional[int] = ..., psn_cash_pay: _Optional[int] = ..., window_funds: _Optional[_Iterable[_Union[FundAmount, _Mapping]]] = ..., after_discharge_funds: _Optional[_Iterable[_Union[FundAmount, _Mapping]]] = ...) -> None: ...

class ReconEntry(_message.Message):
    __slots__ = ("settlement_id", "reversal", "date", "at", "hospital", "medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay", "window_funds", "after_discharge_funds")
    SETTLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REVERSAL_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_FIELD_NUMBER: _ClassVar[int]
    MEDFEE_SUMAMT_FIELD_NUMBER: _ClassVar[int]
    FUND_PAY_SUMAMT_FIELD_NUMBER: _ClassVar[int]
    PSN_CASH_PAY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FUNDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_DISCHARGE_FUNDS_FIELD_NUMBER: _ClassVar[int]
    settlement_id: str
    reversal: bool
    date: str
    at: str
    hospital: str
    medfee_sumamt: int
    fund_pay_sumamt: int
    psn_cash_pay: int
    window_funds: _containers.RepeatedCompositeFieldContainer[FundAmount]
    after_discharge_funds: _containers.RepeatedCompositeFieldContainer[FundAmount]
    def __init__(self, settlement_id: _Optional[str] = ..., reversal: _Optional[bool] = ..., date: _Optional[str] = ..., at: _Optional[str] = ..., hospital: _Optional[str] = ..., medfee_sumamt: _Optional[int] = ..., fund_pay_sumamt: _Optional[int] = ..., psn_cash_pay: _Optional[int] = ..., window_funds: _Optional[_Iterable[_Union[FundAmount, _Mapping]]] = ..., after_discharge_funds: _Optional[_Iterable[_Union[FundAmount, _Mapping]]] = ...) -> None: ...

class TotalDifference(_message.Message):
    __slots__ = ("field", "ours", "theirs", "entries")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OURS_FIELD_NUMBER: _ClassVar[int]
    THEIRS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    field: str
    ours: int
    theirs: int
    entries: _containers.RepeatedCompositeFieldContainer[ReconEntry]
    def __init__(self, field: _Optional[str] = ..., ours: _Optional[int] = ..., theirs: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[ReconEntry, _Mapping]]] = ...) -> None: ...

class LineDifference(_message.Message):
    __slots__ = ("settlement_id", "reversal", "problem", "fields", "ours", "theirs")
    SETTLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REVERSAL_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    OURS_FIELD_NUMBER: _ClassVar[int]
    THEIRS_FIELD_NUMBER: _ClassVar[int]
    settlement_id: str
    reversal: bool
    problem: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    ours: ReconEntry
    theirs: HospitalSettlement
    def __init__(self, settlement_id: _Optional[str] = ..., reversal: _Optional[bool] = ..., problem: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., ours: _Optional[_Union[ReconEntry, _Mapping]] = ..., theirs: _Optional[_Union[HospitalSettlement, _Mapping]] = ...) -> None: ...

class ReconcileResponse(_message.Message):
    __slots__ = ("hospital", "from_date", "to_date", "totals", "compared", "match", "differences", "line_differences", "entries")
    HOSPITAL_FIELD_NUMBER: _ClassVar[int]
    FROM_DATE_FIELD_NUMBER: _ClassVar[int]
    TO_DATE_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    COMPARED_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    LINE_DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    hospital: str
    from_date: str
    to_date: str
    totals: ReconTotals
    compared: bool
    match: bool
    differences: _containers.RepeatedCompositeFieldContainer[TotalDifference]
    line_differences: _containers.RepeatedCompositeFieldContainer[LineDifference]
    entries: _containers.RepeatedCompositeFieldContainer[ReconEntry]
    def __init__(self, hospital: _Optional[str] = ..., from_date: _Optional[str] = ..., to_date: _Optional[str] = ..., totals: _Optional[_Union[ReconTotals, _Mapping]] = ..., compared: _Optional[bool] = ..., match: _Optional[bool] = ..., differences: _Optional[_Iterable[_Union[TotalDifference, _Mapping]]] = ..., line_differences: _Optional[_Iterable[_Union[LineDifference, _Mapping]]] = ..., entries: _Optional[_Iterable[_Union[ReconEntry, _Mapping]]] = ...) -> None: ...

class DailyTotalsRequest(_message.Message):
    __slots__ = ("region", "from_date", "to_date", "hospital")
    REGION_FIELD_NUMBER: _ClassVar[int]
    FROM_DATE_FIELD_NUMBER: _ClassVar[int]
    TO_DATE_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_FIELD_NUMBER: _ClassVar[int]
    region: str
    from_date: str
    to_date: str
    hospital: str
    def __init__(self, region: _Optional[str] = ..., from_date: _Optional[str] = ..., to_date: _Optional[str] = ..., hospital: _Optional[str] = ...) -> None: ...

class DailyFundTotal(_message.Message):
    __slots__ = ("date", "hospital", "fund_code", "settle_at", "count", "pay")
    DATE_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    SETTLE_AT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PAY_FIELD_NUMBER: _ClassVar[int]
    date: str
    hospital: str
    fund_code: str
    settle_at: str
    count: int
    pay: int
    def __init__(self, date: _Optional[str] = ..., hospital: _Optional[str] = ..., fund_code: _Optional[str] = ..., settle_at: _Optional[str] = ..., count: _Optional[int] = ..., pay: _Optional[int] = ...) -> None: ...

class DailyTotalsResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[DailyFundTotal]
    def __init__(self, rows: _Optional[_Iterable[_Union[DailyFundTotal, _Mapping]]] = ...) -> None: ...
