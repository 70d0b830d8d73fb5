{#- Every non-null value of the column is >= min_value (or > min_value when strict): an
    accepted range for numbers. -#}
{% test at_least(model, column_name, min_value, strict=false) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and {{ column_name }} {{ '<=' if strict else '<' }} {{ min_value }}
{% endtest %}
